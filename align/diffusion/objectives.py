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


def diffusion_only_loss(inputs: ObjectiveInputs, s: ObjectiveSettings) -> tuple[torch.Tensor, Stats]:
    """The control for DLPO: beta * diffusion loss alone (DLPO with alpha = 0), i.e. continued pretraining on the
    same real-data batches and budget with the reward ignored. What DLPO gains over it is the reward term's."""
    if inputs.diffusion_loss is None:
        raise ValueError("diffusion_only_loss needs inputs.diffusion_loss")
    return s.beta * inputs.diffusion_loss, {"diffusion_loss": inputs.diffusion_loss.detach()}


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
    "diffusion_only": Objective(diffusion_only_loss, needs_diffusion_loss=True),
}


def get_objective(name: str) -> Objective:
    if name not in OBJECTIVES:
        raise ValueError(f"unknown objective {name!r}; choose one of {sorted(OBJECTIVES)}")
    return OBJECTIVES[name]


def normalise_rewards(
    rewards: torch.Tensor, mode: str, groups: torch.Tensor | None = None, eps: float = 1e-8
) -> torch.Tensor:
    """Advantages from rewards: 'whiten' (zero mean, unit std over the batch, DDPO's per-batch normalisation),
    'center' (minus the batch mean), 'none' (the raw reward, as the DLPO paper writes it), or 'per_prompt'
    (minus the mean reward of the same prompt's samples, `groups` giving each sample's prompt, then divided by
    the std of these centred rewards over the batch: DDPO's per-prompt baseline, with one batch-wide scale so
    that prompts whose samples happen to score alike are not amplified)."""
    if mode == "none":
        return rewards
    if mode == "center":
        return rewards - rewards.mean()
    if mode == "whiten":
        std = rewards.std() if rewards.numel() > 1 else torch.ones((), dtype=rewards.dtype)
        return (rewards - rewards.mean()) / (std + eps)
    if mode == "per_prompt":
        if groups is None or groups.shape != rewards.shape:
            raise ValueError("reward normalisation 'per_prompt' needs one group id per reward")
        _, inverse, counts = torch.unique(groups, return_inverse=True, return_counts=True)
        if bool((counts < 2).any()):
            raise ValueError("reward normalisation 'per_prompt' needs at least 2 samples of every prompt")
        sums = torch.zeros(len(counts), dtype=rewards.dtype).index_add_(0, inverse, rewards)
        centred = rewards - (sums / counts.to(rewards.dtype))[inverse]
        return centred / (centred.pow(2).mean().sqrt() + eps)
    raise ValueError(f"reward normalisation must be 'whiten', 'center', 'per_prompt' or 'none', got {mode!r}")
