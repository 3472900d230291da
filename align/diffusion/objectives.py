"""DLPO and its baselines as pure losses over per-step log-probabilities, with one registry and one signature.

Every loss takes an `ObjectiveInputs` (tensors of a minibatch of sampled trajectories, K trained denoising
steps each) and `ObjectiveSettings`, and returns (loss, stats). Advantages are the trajectories' rewards after
the trainer's normalisation (and, for KL-in-reward, after `kl_in_reward_shaping`). The policy-gradient part of
each loss is -alpha * E_b[A_b * sum_k log p_theta(x_{t_k - 1} | x_{t_k}, c_b)], the REINFORCE estimator over
denoising steps (Black et al. 2023, DDPO_SF; Chen et al. 2024, eq. 9).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

Stats = dict[str, torch.Tensor]


@dataclass
class ObjectiveInputs:
    """A minibatch of B trajectories with K trained steps each."""

    logp: torch.Tensor  # (B, K) log p_theta(x_{t-1} | x_t, c) now, with grad
    old_logp: torch.Tensor  # (B, K) the same at sampling time
    advantages: torch.Tensor  # (B,)
    diffusion_loss: torch.Tensor | None = None  # scalar, with grad (DLPO's beta term)
    kl: torch.Tensor | None = None  # (B, K) KL(p_theta || p_ref) per step, with grad (DPOK)


@dataclass
class ObjectiveSettings:
    alpha: float = 1.0  # weight of the reward (policy-gradient) term
    beta: float = 0.0  # weight of the regulariser: diffusion loss (DLPO), KL (DPOK, KL-in-reward)
    clip_range: float = 1e-4  # DDPO's ratio clip
    rwr_temperature: float = 1.0  # RWR: weights exp(A / temperature), normalised over the batch


def _reinforce(inputs: ObjectiveInputs) -> torch.Tensor:
    return -(inputs.advantages.detach() * inputs.logp.sum(1)).mean()


def dlpo_loss(inputs: ObjectiveInputs, s: ObjectiveSettings) -> tuple[torch.Tensor, Stats]:
    """DLPO (Chen et al. 2024, eq. 9): -alpha * E[A sum_k log p_theta] + beta * diffusion loss. alpha = 0 is plain
    diffusion training; beta = 0 is the REINFORCE estimator."""
    pg = _reinforce(inputs)
    loss = s.alpha * pg
    stats = {"pg_loss": pg.detach()}
    if s.beta != 0.0:
        if inputs.diffusion_loss is None:
            raise ValueError("dlpo_loss with beta != 0 needs inputs.diffusion_loss")
        loss = loss + s.beta * inputs.diffusion_loss
        stats["diffusion_loss"] = inputs.diffusion_loss.detach()
    return loss, stats


def reinforce_loss(inputs: ObjectiveInputs, s: ObjectiveSettings) -> tuple[torch.Tensor, Stats]:
    """-alpha * E[A sum_k log p_theta]: DDPO_SF; with shaped advantages, KL-in-reward."""
    pg = _reinforce(inputs)
    return s.alpha * pg, {"pg_loss": pg.detach()}


def rwr_loss(inputs: ObjectiveInputs, s: ObjectiveSettings) -> tuple[torch.Tensor, Stats]:
    """Reward-weighted regression (Peng et al. 2019; the DDPO paper's RWR baseline): maximise the likelihood of
    the model's own samples weighted by w_b = B * softmax(A / temperature)_b, with no importance ratio."""
    weights = torch.softmax(inputs.advantages.detach() / s.rwr_temperature, 0) * inputs.advantages.numel()
    loss = -(weights * inputs.logp.sum(1)).mean()
    return s.alpha * loss, {"pg_loss": loss.detach(), "rwr_max_weight": weights.max()}


def ddpo_loss(inputs: ObjectiveInputs, s: ObjectiveSettings) -> tuple[torch.Tensor, Stats]:
    """DDPO_IS (Black et al. 2023): PPO's clipped importance-sampled surrogate at every trained step,
    -alpha * E_b[sum_k min(r A, clip(r, 1 - eps, 1 + eps) A)], r = p_theta / p_old of the sampled step."""
    ratio = torch.exp(inputs.logp - inputs.old_logp.detach())
    adv = inputs.advantages.detach()[:, None]
    surrogate = torch.minimum(ratio * adv, ratio.clamp(1 - s.clip_range, 1 + s.clip_range) * adv)
    loss = -surrogate.sum(1).mean()
    stats = {
        "pg_loss": loss.detach(),
        "clip_fraction": ((ratio - 1).abs() > s.clip_range).float().mean().detach(),
        "approx_kl": (0.5 * (inputs.logp - inputs.old_logp) ** 2).mean().detach(),
    }
    return s.alpha * loss, stats


def dpok_loss(inputs: ObjectiveInputs, s: ObjectiveSettings) -> tuple[torch.Tensor, Stats]:
    """DPOK (Fan et al. 2023, eq. 7): -alpha * E[A sum_k log p_theta] + beta * E[sum_k KL(p_theta || p_pre)]
    with the per-step KL between the fine-tuned and the pretrained model's Gaussians, differentiated."""
    if inputs.kl is None:
        raise ValueError("dpok_loss needs inputs.kl (per-step KL against the pretrained model)")
    pg = _reinforce(inputs)
    kl = inputs.kl.sum(1).mean()
    return s.alpha * pg + s.beta * kl, {"pg_loss": pg.detach(), "kl_penalty": kl.detach()}


def kl_in_reward_shaping(rewards: torch.Tensor, rollout_kl: torch.Tensor, beta: float) -> torch.Tensor:
    """KL-in-reward (Fan et al. 2023's KL-regularised reward): r - beta * sum_k KL_k, the KL measured when the
    trajectory was sampled and treated as part of the reward (no gradient through it)."""
    return rewards - beta * rollout_kl.detach()


@dataclass(frozen=True)
class Objective:
    """A loss and what the trainer must compute for it."""

    loss: Callable[[ObjectiveInputs, ObjectiveSettings], tuple[torch.Tensor, Stats]]
    needs_diffusion_loss: bool = False
    needs_reference: bool = False  # per-step KL against the frozen pretrained model, with grad
    shapes_reward_with_kl: bool = False  # KL at sampling time folded into the reward


OBJECTIVES: dict[str, Objective] = {
    "dlpo": Objective(dlpo_loss, needs_diffusion_loss=True),
    "rwr": Objective(rwr_loss),
    "ddpo": Objective(ddpo_loss),
    "dpok": Objective(dpok_loss, needs_reference=True),
    "kl_in_reward": Objective(reinforce_loss, shapes_reward_with_kl=True),
    "reinforce": Objective(reinforce_loss),
}


def get_objective(name: str) -> Objective:
    if name not in OBJECTIVES:
        raise ValueError(f"unknown objective {name!r}; choose one of {sorted(OBJECTIVES)}")
    return OBJECTIVES[name]


def normalise_rewards(rewards: torch.Tensor, mode: str) -> torch.Tensor:
    """Advantages from rewards: 'whiten' (zero mean, unit std over the batch, DDPO's per-batch
    normalisation), 'center' (minus the batch mean) or 'none' (the raw reward, as the DLPO paper writes it)."""
    if mode == "none":
        return rewards
    if mode == "center":
        return rewards - rewards.mean()
    if mode == "whiten":
        std = rewards.std() if rewards.numel() > 1 else torch.ones((), dtype=rewards.dtype)
        return (rewards - rewards.mean()) / (std + 1e-8)
    raise ValueError(f"reward normalisation must be 'whiten', 'center' or 'none', got {mode!r}")
