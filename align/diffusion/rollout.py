"""Sampling trajectories and keeping only what the losses need: x_t and x_{t-1} at K chosen steps, their
log-probabilities under the sampling policy, and the KL to the pretrained model there."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from align.diffusion.steps import gaussian_kl, step_distribution, step_log_prob


@dataclass
class Trajectories:
    """B sampled trajectories; tensors indexed (K, B, ...) at the kept steps `timesteps` (K,)."""

    prompts: list[Any]
    cond: Any
    x0: torch.Tensor
    timesteps: torch.Tensor  # (K,) scheduler timesteps of the kept steps
    x_t: torch.Tensor  # (K, B, ...)
    x_prev: torch.Tensor  # (K, B, ...)
    old_logp: torch.Tensor  # (B, K)
    kl: torch.Tensor | None  # (B, K) KL(p_sampling || p_ref) at the kept steps
    rewards: torch.Tensor | None = None
    advantages: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.prompts)


def denoiser_timesteps(t: torch.Tensor | int, batch: int, device: torch.device) -> torch.Tensor:
    return torch.full((batch,), int(t), device=device, dtype=torch.long)


@torch.no_grad()
def sample_trajectories(
    model: nn.Module,
    ref_model: nn.Module | None,
    scheduler,
    prompts: list[Any],
    cond: Any,
    shape: tuple[int, ...],
    keep: torch.Tensor,
    generator: torch.Generator,
    eta: float = 1.0,
    reduction: str = "mean",
) -> Trajectories:
    """Run the scheduler's full stochastic chain from N(0, I); `keep` are indices into scheduler.timesteps."""
    device = next(model.parameters()).device
    x = torch.randn(shape, generator=generator).to(device)
    keep_set = {int(k) for k in keep}
    xs_t, xs_prev, logps, kls = [], [], [], []
    for i, t in enumerate(scheduler.timesteps):
        out = model(x, denoiser_timesteps(t, shape[0], device), cond).float()
        step = step_distribution(scheduler, out, int(t), x, eta)
        if float(step.std) > 0:
            x_prev = step.mean + step.std * torch.randn(shape, generator=generator).to(device)
        else:
            x_prev = step.mean
        if i in keep_set:
            xs_t.append(x)
            xs_prev.append(x_prev)
            logps.append(step_log_prob(step.mean, step.std, x_prev, reduction))
            if ref_model is not None:
                ref = step_distribution(
                    scheduler,
                    ref_model(x, denoiser_timesteps(t, shape[0], device), cond).float(),
                    int(t),
                    x,
                    eta,
                )
                kls.append(gaussian_kl(step.mean, ref.mean, step.std, reduction))
        x = x_prev
    timesteps = scheduler.timesteps[keep.sort().values].clone()
    empty = x.new_zeros((0, *shape))
    return Trajectories(
        prompts=list(prompts),
        cond=cond,
        x0=x,
        timesteps=timesteps,
        x_t=torch.stack(xs_t) if xs_t else empty,
        x_prev=torch.stack(xs_prev) if xs_prev else empty,
        old_logp=torch.stack(logps, 1) if logps else x.new_zeros((shape[0], 0)),
        kl=torch.stack(kls, 1) if kls else None,
    )


def stochastic_step_indices(scheduler, eta: float = 1.0) -> list[int]:
    """Indices into scheduler.timesteps whose step has a density (DDPM's last step, t = 0, does not)."""
    from diffusers import DDPMScheduler

    if isinstance(scheduler, DDPMScheduler):
        return [i for i, t in enumerate(scheduler.timesteps) if int(t) > 0]
    return list(range(len(scheduler.timesteps))) if eta > 0 else []


def select_cond(cond: Any, index: torch.Tensor) -> Any:
    """Rows `index` of a conditioning value: a tensor, None, or an object with a `select(index)` method."""
    if cond is None:
        return None
    if isinstance(cond, torch.Tensor):
        return cond[index.to(cond.device)]
    if hasattr(cond, "select"):
        return cond.select(index)
    raise TypeError(
        f"cannot take rows of a conditioning value of type {type(cond).__name__}; give it select()"
    )
