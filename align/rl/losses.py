"""Policy and value losses over masked tokens, as interchangeable pure functions.

All take log-probs of the sampled tokens: `logp` (current policy, with grad), `old_logp` (behaviour policy),
advantages and a mask, and return (loss, stats). The policy losses are registered in `POLICY_LOSSES` under one
signature, `fn(logp, old_logp, advantages, mask, params: PolicyLossParams)`; the trainer dispatches by name.
Their statistics mean what the same names mean in `control.losses.policy` (CleanRL's definitions):
`clip_fraction` = share of tokens with |ratio - 1| > clip, `approx_kl` = mean of (ratio - 1) - log ratio (k3).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from align.rl.masked import masked_mean


@dataclass(frozen=True)
class PolicyLossParams:
    """The settings a policy loss may read: PPO's clip and the symmetric loss's alpha, beta and Z."""

    clip: float = 0.2
    alpha: float = 1.0
    beta: float = 0.0
    z: float = -1.0


def _ratio_stats(logp: torch.Tensor, old_logp: torch.Tensor, mask: torch.Tensor, clip: float) -> dict:
    with torch.no_grad():
        log_ratio = logp - old_logp
        ratio = log_ratio.exp()
        return {
            "clip_fraction": masked_mean(((ratio - 1).abs() > clip).float(), mask),
            "approx_kl": masked_mean((ratio - 1) - log_ratio, mask),
        }


def ppo_clip_loss(
    logp: torch.Tensor,
    old_logp: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    clip: float = 0.2,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """PPO's clipped surrogate (Schulman et al., 2017): -E[min(r A, clip(r, 1-eps, 1+eps) A)]."""
    ratio = torch.exp(logp - old_logp)
    unclipped = ratio * advantages
    clipped = torch.clamp(ratio, 1.0 - clip, 1.0 + clip) * advantages
    loss = -masked_mean(torch.minimum(unclipped, clipped), mask)
    return loss, _ratio_stats(logp, old_logp, mask, clip)


def sppo_gate(ratio: torch.Tensor, advantages: torch.Tensor, clip: float) -> torch.Tensor:
    """1 where PPO's min picks the unclipped surrogate (ratio inside [1-eps, 1+eps] included), else 0."""
    unclipped = ratio * advantages
    clipped = torch.clamp(ratio, 1.0 - clip, 1.0 + clip) * advantages
    return (unclipped <= clipped).to(ratio.dtype)


def symmetric_loss(
    logp: torch.Tensor,
    old_logp: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    clip: float = 0.2,
    alpha: float = 1.0,
    beta: float = 0.0,
    z: float = -1.0,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """SPPO (Byun & Perrault, 2025): alpha * L_PPO + beta * L_rev with the reverse-cross-entropy term
    L_rev = -E[1_t * Z * A_t * (1 - pi(a_t|s_t)) / pi_old(a_t|s_t)], pi(a_t|s_t) the softmax probability
    of the sampled token. alpha=1, beta=0 is PPO exactly. With Z=-1 the reverse term's gradient equals
    PPO's wherever the gate is open, so SPPO then acts as PPO scaled by alpha + beta."""
    ppo, stats = ppo_clip_loss(logp, old_logp, advantages, mask, clip)
    if beta == 0.0:
        return alpha * ppo, stats
    ratio = torch.exp(logp - old_logp)
    gate = sppo_gate(ratio.detach(), advantages, clip)
    reverse_terms = gate * z * advantages * (1.0 - torch.exp(logp)) / torch.exp(old_logp)
    reverse = -masked_mean(reverse_terms, mask)
    stats = {**stats, "reverse_loss": reverse.detach(), "gate_open": masked_mean(gate, mask).detach()}
    return alpha * ppo + beta * reverse, stats


def value_loss(
    values: torch.Tensor,
    old_values: torch.Tensor,
    returns: torch.Tensor,
    mask: torch.Tensor,
    clip: float | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """0.5 * E[(V - R)^2], optionally PPO-style clipped around the old values (the max of both errors)."""
    error = (values - returns) ** 2
    if clip is not None:
        clipped = old_values + torch.clamp(values - old_values, -clip, clip)
        error = torch.maximum(error, (clipped - returns) ** 2)
    loss = 0.5 * masked_mean(error, mask)
    return loss, {
        "value_clip_fraction": masked_mean((values - old_values).abs().gt(clip or float("inf")).float(), mask)
    }


def entropy_from_logits(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean per-token entropy of the policy's distribution over the vocabulary."""
    logp = torch.log_softmax(logits.float(), dim=-1)
    entropy = -(logp.exp() * logp).sum(-1)
    return masked_mean(entropy, mask)


PolicyLoss = Callable[
    [torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, PolicyLossParams],
    tuple[torch.Tensor, dict[str, torch.Tensor]],
]

POLICY_LOSSES: dict[str, PolicyLoss] = {
    "ppo": lambda logp, old_logp, adv, mask, p: ppo_clip_loss(logp, old_logp, adv, mask, p.clip),
    "sppo": lambda logp, old_logp, adv, mask, p: symmetric_loss(
        logp, old_logp, adv, mask, p.clip, p.alpha, p.beta, p.z
    ),
}
