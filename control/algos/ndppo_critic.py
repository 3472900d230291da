"""Quantile value critic and its targets for normality-guided PPO and the plain quantile-critic baseline.

Two critic modes (Byun & Perrault, arXiv 2208.13125):

- ``"normal"``: quantile ``i`` is regressed (quantile Huber, kappa 1) to its quantile bar
  ``G_t + sigma_t * z_i`` of the approximately normal return distribution, ``sigma_t`` shrinking through the
  episode; an optional exploration bonus from how far the learned quantiles are from that normal.
- ``"quantile"``: the baseline; every quantile is regressed to the sampled return ``G_t`` (quantile regression,
  QR-DQN style), so the critic learns the spread of returns from data alone, no normality prior, no bonus.

In both modes the value used for GAE is the mean of the quantiles.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from control.losses.distributional import (
    normal_quantile_targets,
    normality_bonus,
    quantile_fractions,
    quantile_huber_loss,
    standard_normal_quantiles,
)

__all__ = ["QuantileCritic", "quantile_critic_loss", "exploration_bonus", "CRITIC_MODES"]

CRITIC_MODES = ("normal", "quantile")


def _layer(in_dim: int, out_dim: int, gain: float) -> nn.Linear:
    layer = nn.Linear(in_dim, out_dim)
    nn.init.orthogonal_(layer.weight, gain)
    nn.init.zeros_(layer.bias)
    return layer


class QuantileCritic(nn.Module):
    """MLP ``obs -> N`` quantiles of the return; ``sort=True`` sorts them so they never cross (paper: unsorted)."""

    def __init__(self, obs_dim: int, num_quantiles: int = 8, hidden: int = 64, sort: bool = False) -> None:
        super().__init__()
        self.net = nn.Sequential(
            _layer(obs_dim, hidden, np.sqrt(2)),
            nn.Tanh(),
            _layer(hidden, hidden, np.sqrt(2)),
            nn.Tanh(),
            _layer(hidden, num_quantiles, 1.0),
        )
        self.sort = sort
        self.register_buffer("taus", quantile_fractions(num_quantiles))
        self.register_buffer("z", standard_normal_quantiles(num_quantiles))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        q = self.net(obs)
        return torch.sort(q, dim=-1).values if self.sort else q

    def value(self, obs: torch.Tensor) -> torch.Tensor:
        """Scalar value for GAE: the mean of the quantiles."""
        return self.forward(obs).mean(-1)


def quantile_critic_loss(
    quantiles: torch.Tensor,
    returns: torch.Tensor,
    target_std: torch.Tensor | None,
    taus: torch.Tensor,
    z: torch.Tensor,
    mode: str = "normal",
    kappa: float = 1.0,
) -> torch.Tensor:
    """Critic loss for a minibatch: quantile bars (``mode="normal"``) or the sampled return (``"quantile"``)."""
    if mode == "normal":
        if target_std is None:
            raise ValueError("critic mode 'normal' needs target_std (sigma_t per sample)")
        bars = normal_quantile_targets(returns, target_std, z)
        return quantile_huber_loss(quantiles, bars, taus, kappa=kappa, pairwise=True)
    if mode == "quantile":
        return quantile_huber_loss(quantiles, returns.unsqueeze(-1), taus, kappa=kappa)
    raise ValueError(f"critic mode must be one of {CRITIC_MODES}, got {mode!r}")


@torch.no_grad()
def exploration_bonus(
    critic: QuantileCritic, obs: torch.Tensor, target_std: torch.Tensor, coef: float, fallback: float = 0.0
) -> torch.Tensor:
    """Reward bonus ``coef * KL(N(m, sigma_t^2) || N(m, sigma_hat^2))`` at the visited states (paper: 0.05)."""
    return coef * normality_bonus(critic(obs), target_std, critic.z, fallback=fallback)
