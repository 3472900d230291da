"""ND-PPO's exploration bonus per rollout step, in numpy.

The bonus is computed once per env step for a handful of observations: a quantile-critic forward, the std
schedule at each env's step and the KL of :func:`control.losses.distributional.normality_bonus`. In torch that
is some thirty tiny tensor ops, each costing more in dispatch than in arithmetic (about 170 us a step on our
CPU, more than the MuJoCo step itself); here it is a float32 numpy copy of the critic (as the rollout's
`control.samplers.NumpyMLPSampler` keeps of the policy) and the same formulas on arrays. The torch functions
stay the reference; tests check that both give the same bonus.
"""

from __future__ import annotations

import numpy as np
from torch import nn

from control.samplers import linear_layers, mlp_forward, numpy_params

__all__ = ["NumpyBonus", "std_schedule", "kl_to_normal"]


def std_schedule(
    step_in_episode: np.ndarray, initial_variance: float, min_std: float, mean_episode_length: float
) -> np.ndarray:
    """`return_std_schedule` on arrays: ``sqrt(max(s0^2 + t (s_min^2 - s0^2) / L, s_min^2))`` (float32)."""
    min_var = np.float32(min_std**2)
    var = np.float32(initial_variance) + step_in_episode.astype(np.float32) * np.float32(
        (min_std**2 - initial_variance) / mean_episode_length
    )
    return np.sqrt(np.maximum(var, min_var))


def kl_to_normal(quantiles: np.ndarray, target_std: np.ndarray, z: np.ndarray, fallback: float) -> np.ndarray:
    """`normality_bonus` on arrays: ``KL(N(m, s_t^2) || N(m, s_hat^2))`` from the quantiles (rows), `fallback`
    where they are not monotone or their fitted std is not positive."""
    sigma_hat = ((quantiles - quantiles.mean(-1, keepdims=True)) / z).mean(-1)
    monotone = (quantiles[:, 1:] >= quantiles[:, :-1]).all(-1) & (sigma_hat > 0)
    safe_hat = np.where(monotone, sigma_hat, np.float32(1.0))
    sigma_t = np.maximum(target_std, np.float32(1e-8))
    kl = np.log(safe_hat / sigma_t) + sigma_t * sigma_t / (2 * safe_hat * safe_hat) - np.float32(0.5)
    return np.where(monotone, kl, np.float32(fallback))


class NumpyBonus:
    """The bonus ``coef * KL`` at a batch of observations, from a numpy copy of a `QuantileCritic` that
    `refresh()` takes again (after each update; the first `__call__` takes it when there is none)."""

    def __init__(self, critic: nn.Module, coef: float, fallback: float) -> None:
        self.critic, self.coef, self.fallback = critic, coef, fallback
        self.layers = linear_layers(critic.net)
        self.z = critic.z.detach().cpu().numpy().astype(np.float32)
        self.params: list[tuple[np.ndarray, np.ndarray]] | None = None

    def refresh(self) -> None:
        """Forget the copy of the critic's weights (they changed); the next call copies them again."""
        self.params = None

    def __call__(self, obs: np.ndarray, target_std: np.ndarray) -> np.ndarray:
        if self.params is None:
            self.params = numpy_params(self.layers)
        quantiles = mlp_forward(self.params, np.asarray(obs, dtype=np.float32))
        if self.critic.sort:
            quantiles = np.sort(quantiles, -1)
        return self.coef * kl_to_normal(quantiles, target_std, self.z, self.fallback)
