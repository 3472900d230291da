"""The Gaussian of one denoising step x_t -> x_{t-1} under a diffusers scheduler, and what follows from it.

A stochastic sampler draws x_{t-1} ~ N(mu_theta(x_t, t, c), sigma_t^2 I) (DDPM, Ho et al. 2020, eq. 11; DDIM
with eta > 0, Song et al. 2021, eq. 12). DLPO, DDPO and DPOK treat each step as a policy action, so they need
log N(x_{t-1}; mu_theta, sigma_t^2 I) with gradients through mu_theta, and the KL between two such Gaussians.
These functions read the scheduler's own alphas, prediction type, clipping and variance type, so the mean and
standard deviation are the ones `scheduler.step` samples from.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from diffusers import DDIMScheduler, DDPMScheduler

SUPPORTED_SCHEDULERS = (DDPMScheduler, DDIMScheduler)


@dataclass
class StepGaussian:
    """N(mean, std^2 I) of x_{t-1} given x_t; `std` is a scalar tensor (0 for a deterministic last step)."""

    mean: torch.Tensor
    std: torch.Tensor
    pred_original_sample: torch.Tensor


def check_scheduler(scheduler) -> None:
    """Raise a clear error for schedulers or settings whose step is not a Gaussian we can write down."""
    if not isinstance(scheduler, SUPPORTED_SCHEDULERS):
        raise TypeError(
            f"scheduler {type(scheduler).__name__} is not supported; use diffusers DDPMScheduler or "
            "DDIMScheduler (eta > 0)"
        )
    if isinstance(scheduler, DDPMScheduler) and scheduler.config.variance_type not in (
        "fixed_small",
        "fixed_large",
    ):
        raise ValueError(
            f"DDPMScheduler variance_type={scheduler.config.variance_type!r}: only 'fixed_small' and "
            "'fixed_large' give a fixed Gaussian step"
        )
    if scheduler.config.thresholding:
        raise ValueError("scheduler thresholding=True is not supported (dynamic thresholding); turn it off")


def _predicted_x0(
    scheduler, model_output: torch.Tensor, t: int, x_t: torch.Tensor, alpha_prod_t
) -> torch.Tensor:
    beta_prod_t = 1 - alpha_prod_t
    kind = scheduler.config.prediction_type
    if kind == "epsilon":
        x0 = (x_t - beta_prod_t**0.5 * model_output) / alpha_prod_t**0.5
    elif kind == "sample":
        x0 = model_output
    elif kind == "v_prediction":
        x0 = alpha_prod_t**0.5 * x_t - beta_prod_t**0.5 * model_output
    else:
        raise ValueError(f"scheduler prediction_type {kind!r} is not supported")
    if scheduler.config.clip_sample:
        r = scheduler.config.clip_sample_range
        x0 = x0.clamp(-r, r)
    return x0


def _predicted_eps(scheduler, model_output, x_t, alpha_prod_t) -> torch.Tensor:
    kind = scheduler.config.prediction_type
    beta_prod_t = 1 - alpha_prod_t
    if kind == "epsilon":
        return model_output
    if kind == "sample":
        return (x_t - alpha_prod_t**0.5 * model_output) / beta_prod_t**0.5
    return alpha_prod_t**0.5 * model_output + beta_prod_t**0.5 * x_t


def step_distribution(
    scheduler, model_output: torch.Tensor, t: int, x_t: torch.Tensor, eta: float = 1.0
) -> StepGaussian:
    """The Gaussian `scheduler.step(model_output, t, x_t)` samples x_{t-1} from (for DDIM: with this eta)."""
    check_scheduler(scheduler)
    t = int(t)
    acp = scheduler.alphas_cumprod.to(x_t.device, torch.float64)
    alpha_prod_t = acp[t]
    if isinstance(scheduler, DDPMScheduler):
        prev_t = int(scheduler.previous_timestep(t))
        alpha_prod_prev = acp[prev_t] if prev_t >= 0 else torch.ones((), dtype=acp.dtype, device=acp.device)
        current_alpha = alpha_prod_t / alpha_prod_prev
        current_beta = 1 - current_alpha
        x0 = _predicted_x0(scheduler, model_output, t, x_t, alpha_prod_t.to(x_t.dtype))
        mean = ((alpha_prod_prev**0.5 * current_beta) / (1 - alpha_prod_t)).to(x_t.dtype) * x0 + (
            current_alpha**0.5 * (1 - alpha_prod_prev) / (1 - alpha_prod_t)
        ).to(x_t.dtype) * x_t
        if scheduler.config.variance_type == "fixed_small":
            variance = (1 - alpha_prod_prev) / (1 - alpha_prod_t) * current_beta
        else:
            variance = current_beta
        std = variance.clamp(min=0) ** 0.5 if t > 0 else torch.zeros((), dtype=acp.dtype, device=acp.device)
    else:
        if eta <= 0:
            raise ValueError("DDIMScheduler with eta <= 0 is deterministic: a step has no log-probability")
        if scheduler.num_inference_steps is None:
            raise ValueError("DDIMScheduler: call set_timesteps(num_inference_steps) before sampling")
        prev_t = t - scheduler.config.num_train_timesteps // scheduler.num_inference_steps
        alpha_prod_prev = acp[prev_t] if prev_t >= 0 else scheduler.final_alpha_cumprod.to(acp)
        variance = (1 - alpha_prod_prev) / (1 - alpha_prod_t) * (1 - alpha_prod_t / alpha_prod_prev)
        std = eta * variance.clamp(min=0) ** 0.5
        x0 = _predicted_x0(scheduler, model_output, t, x_t, alpha_prod_t.to(x_t.dtype))
        eps = _predicted_eps(scheduler, model_output, x_t, alpha_prod_t.to(x_t.dtype))
        direction = ((1 - alpha_prod_prev - std**2).clamp(min=0) ** 0.5).to(x_t.dtype) * eps
        mean = (alpha_prod_prev**0.5).to(x_t.dtype) * x0 + direction
    return StepGaussian(mean=mean, std=std.to(x_t.dtype), pred_original_sample=x0)


def _reduce(per_element: torch.Tensor, reduction: str) -> torch.Tensor:
    dims = tuple(range(1, per_element.ndim))
    if reduction == "sum":
        return per_element.sum(dims)
    if reduction == "mean":
        return per_element.mean(dims)
    raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")


def step_log_prob(
    mean: torch.Tensor, std: torch.Tensor, x_prev: torch.Tensor, reduction: str = "mean"
) -> torch.Tensor:
    """log N(x_prev; mean, std^2 I) per sample (leading dim). 'sum' is the log-density; 'mean' divides it by
    the number of elements, which keeps the policy-gradient term's scale independent of the signal length."""
    if float(std) <= 0:
        raise ValueError("step_log_prob: std is 0 (a deterministic step, e.g. DDPM's t = 0) has no density")
    per_element = -((x_prev - mean) ** 2) / (2 * std**2) - torch.log(std) - 0.5 * math.log(2 * math.pi)
    return _reduce(per_element, reduction)


def gaussian_kl(
    mean: torch.Tensor, mean_ref: torch.Tensor, std: torch.Tensor, reduction: str = "mean"
) -> torch.Tensor:
    """KL(N(mean, std^2 I) || N(mean_ref, std^2 I)) = ||mean - mean_ref||^2 / (2 std^2), per sample: the
    per-step KL between the fine-tuned and the pretrained model that DPOK bounds (Fan et al. 2023, Lemma 4.2)."""
    if float(std) <= 0:
        raise ValueError("gaussian_kl: std is 0 (a deterministic step)")
    return _reduce((mean - mean_ref) ** 2 / (2 * std**2), reduction)


def noise_prediction_loss(prediction: torch.Tensor, target: torch.Tensor, kind: str = "l2") -> torch.Tensor:
    """The diffusion loss ||target - prediction||^2 (Ho et al. 2020, eq. 14) averaged over elements; 'l1' is
    WaveGrad's variant."""
    if kind == "l2":
        return (prediction - target).pow(2).mean()
    if kind == "l1":
        return (prediction - target).abs().mean()
    raise ValueError(f"diffusion loss kind must be 'l2' or 'l1', got {kind!r}")


def training_target(scheduler, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """What the denoiser should output at (x_t, t) for the scheduler's prediction type."""
    kind = scheduler.config.prediction_type
    if kind == "epsilon":
        return noise
    if kind == "sample":
        return x0
    if kind == "v_prediction":
        return scheduler.get_velocity(x0, noise, t)
    raise ValueError(f"scheduler prediction_type {kind!r} is not supported")
