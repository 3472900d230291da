"""Policy losses for control: PPO, A2C and their symmetric (reverse-cross-entropy) versions, SPPO and SA2C
(Byun & Perrault, ICML 2025), as pure functions over per-sample tensors. Each returns (loss, stats).

`log_prob` is log pi(a|s) of the taken action under the current policy, `old_log_prob` under the behaviour
policy, `prob` = pi(a|s) (for a multi-discrete action, the product over dimensions).
"""

from __future__ import annotations

import torch


def ppo_loss(
    log_prob: torch.Tensor, old_log_prob: torch.Tensor, advantages: torch.Tensor, clip_eps: float = 0.2
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """PPO's clipped surrogate, -E[min(r A, clip(r, 1-eps, 1+eps) A)]."""
    log_ratio = log_prob - old_log_prob
    ratio = log_ratio.exp()
    unclipped = ratio * advantages
    clipped = torch.clamp(ratio, 1 - clip_eps, 1 + clip_eps) * advantages
    loss = -torch.minimum(unclipped, clipped).mean()
    with torch.no_grad():
        stats = {
            "clip_fraction": ((ratio - 1).abs() > clip_eps).float().mean(),
            "approx_kl": ((ratio - 1) - log_ratio).mean(),
        }
    return loss, stats


def sppo_gate(ratio: torch.Tensor, advantages: torch.Tensor, clip_eps: float) -> torch.Tensor:
    """1 where ratio is inside [1-eps, 1+eps] or PPO's min picks the unclipped surrogate (authors' code)."""
    inside = (ratio >= 1 - clip_eps) & (ratio <= 1 + clip_eps)
    picks_unclipped = ratio * advantages <= torch.clamp(ratio, 1 - clip_eps, 1 + clip_eps) * advantages
    return (inside | picks_unclipped).to(ratio.dtype)


def sppo_loss(
    log_prob: torch.Tensor,
    old_log_prob: torch.Tensor,
    advantages: torch.Tensor,
    prob: torch.Tensor,
    clip_eps: float = 0.2,
    alpha: float = 1.0,
    beta: float = 0.0,
    z: float = -1.0,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """alpha * L_PPO + beta * L_rev, L_rev = -E[1_t * Z * A_t * (1 - pi(a_t|s_t)) / pi_old(a_t|s_t)]."""
    ppo, stats = ppo_loss(log_prob, old_log_prob, advantages, clip_eps)
    if beta == 0.0:
        return alpha * ppo, stats
    gate = sppo_gate((log_prob - old_log_prob).exp().detach(), advantages, clip_eps)
    reverse = -(gate * z * advantages * (1 - prob) / old_log_prob.exp()).mean()
    return alpha * ppo + beta * reverse, {**stats, "reverse_loss": reverse.detach(), "gate_open": gate.mean()}


def a2c_loss(
    log_prob: torch.Tensor, advantages: torch.Tensor
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Vanilla policy gradient, -E[A log pi(a|s)]."""
    return -(advantages * log_prob).mean(), {}


def sa2c_loss(
    log_prob: torch.Tensor,
    advantages: torch.Tensor,
    prob: torch.Tensor,
    alpha: float = 1.0,
    beta: float = 0.0,
    z: float = -1.0,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """SA2C: alpha * (-E[A log pi]) + beta * (-E[Z A (1 - pi)])."""
    a2c, _ = a2c_loss(log_prob, advantages)
    if beta == 0.0:
        return alpha * a2c, {}
    reverse = -(z * advantages * (1 - prob)).mean()
    return alpha * a2c + beta * reverse, {"reverse_loss": reverse.detach()}


def value_loss(
    values: torch.Tensor,
    returns: torch.Tensor,
    old_values: torch.Tensor | None = None,
    clip_eps: float | None = None,
) -> torch.Tensor:
    """0.5 * E[(V - R)^2], optionally clipped around the old values (PPO's value clipping)."""
    error = (values - returns) ** 2
    if clip_eps is not None and old_values is not None:
        clipped = old_values + torch.clamp(values - old_values, -clip_eps, clip_eps)
        error = torch.maximum(error, (clipped - returns) ** 2)
    return 0.5 * error.mean()
