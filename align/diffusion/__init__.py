"""RL fine-tuning of diffusion models (DLPO and its baselines, Chen et al., 2024): step log-probabilities under
diffusers schedulers, pure objectives with a registry, and a trainer for any denoiser eps(x_t, t, cond)."""

from align.diffusion.objectives import OBJECTIVES, Objective, ObjectiveInputs
from align.diffusion.steps import gaussian_kl, step_distribution, step_log_prob

__all__ = [
    "OBJECTIVES",
    "Objective",
    "ObjectiveInputs",
    "gaussian_kl",
    "step_distribution",
    "step_log_prob",
]
