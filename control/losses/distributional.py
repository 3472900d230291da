"""Quantile critics and normality guidance (Byun & Perrault, "Normality-Guided Distributional Reinforcement
Learning for Continuous Control", arXiv 2208.13125).

By the Markov-chain central limit theorem the return from step ``t`` is approximately normal, with a spread
that shrinks as the episode advances. The critic predicts ``N`` quantiles at fractions ``tau_i = i / (N + 1)``;
its targets are the "quantile bars" of that normal, ``G_t + sigma_t * Phi^-1(tau_i)``, and an exploration
bonus measures how far the learned quantiles are from the normal's.
"""

from __future__ import annotations

import torch

__all__ = [
    "quantile_fractions",
    "standard_normal_quantiles",
    "normal_quantile_targets",
    "return_std_schedule",
    "quantile_huber_loss",
    "fitted_std",
    "normality_bonus",
]


def quantile_fractions(num_quantiles: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Quantile fractions ``tau_i = i / (N + 1)``, ``i = 1..N`` (the paper's critic outputs)."""
    if num_quantiles < 1:
        raise ValueError(f"num_quantiles must be >= 1, got {num_quantiles}")
    return torch.arange(1, num_quantiles + 1, dtype=dtype) / (num_quantiles + 1)


def standard_normal_quantiles(num_quantiles: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``z_i = Phi^-1(tau_i)`` for the fractions of :func:`quantile_fractions`; symmetric, so ``mean(z) = 0``."""
    return torch.special.ndtri(quantile_fractions(num_quantiles, torch.float64)).to(dtype)


def normal_quantile_targets(mean: torch.Tensor, std: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """Quantile bars ``mean + std * z_i`` of ``N(mean, std^2)``: shape ``mean.shape + (N,)``."""
    return mean.unsqueeze(-1) + std.unsqueeze(-1) * z


def return_std_schedule(
    step_in_episode: torch.Tensor, initial_variance: float, min_std: float, mean_episode_length: float
) -> torch.Tensor:
    """Std of the return from episode step ``t``, shrinking linearly in variance as the episode advances.

    ``sigma_t = sqrt(max(sigma_0^2 + t * (sigma_min^2 - sigma_0^2) / L, sigma_min^2))`` with ``sigma_0^2`` the
    variance of recent episode returns and ``L`` the mean recent episode length. If ``sigma_0 < sigma_min`` the
    schedule is the constant ``sigma_min`` (the floor).
    """
    if mean_episode_length <= 0:
        raise ValueError(f"mean_episode_length must be > 0, got {mean_episode_length}")
    if initial_variance < 0 or min_std < 0:
        raise ValueError(f"initial_variance and min_std must be >= 0, got {initial_variance}, {min_std}")
    min_var = min_std**2
    var = (
        initial_variance
        + step_in_episode.to(torch.float32) * (min_var - initial_variance) / mean_episode_length
    )
    return torch.clamp(var, min=min_var).sqrt()


def quantile_huber_loss(
    quantiles: torch.Tensor,
    targets: torch.Tensor,
    taus: torch.Tensor,
    kappa: float = 1.0,
    pairwise: bool = False,
) -> torch.Tensor:
    """Quantile Huber loss (QR-DQN, Dabney et al. 2018, eq. 10), averaged over the batch.

    ``rho_tau(u) = |tau - 1{u < 0}| * H_kappa(u) / kappa`` with ``u = target - quantile``. With
    ``pairwise=False`` every predicted quantile ``(B, N)`` is regressed against every target sample ``(B, M)``
    (the plain quantile critic uses ``M = 1``, the return ``G_t``); with ``pairwise=True`` quantile ``i`` is
    regressed to its own target bar ``i`` (normality-guided critic, targets ``(B, N)``).
    """
    if quantiles.shape[-1] != taus.shape[-1]:
        raise ValueError(f"quantiles have {quantiles.shape[-1]} outputs but taus has {taus.shape[-1]}")
    if pairwise:
        if targets.shape != quantiles.shape:
            raise ValueError(
                f"pairwise targets must match quantiles {tuple(quantiles.shape)}, got {tuple(targets.shape)}"
            )
        u = targets - quantiles  # (B, N)
        tau = taus
    else:
        u = targets.unsqueeze(-2) - quantiles.unsqueeze(-1)  # (B, N, M)
        tau = taus.unsqueeze(-1)
    abs_u = u.abs()
    huber = torch.where(abs_u <= kappa, 0.5 * u.pow(2), kappa * (abs_u - 0.5 * kappa))
    rho = (tau - (u.detach() < 0).to(u.dtype)).abs() * huber / kappa
    if pairwise:
        return rho.sum(-1).mean()
    return rho.mean(-1).sum(-1).mean()


def fitted_std(quantiles: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """Std of the normal closest to the learned quantiles: ``sigma_hat = mean_i (V_i - mean_j V_j) / z_i``."""
    if torch.any(z == 0):
        raise ValueError("fitted_std needs z_i != 0; use an even number of quantiles (tau = 0.5 excluded)")
    return ((quantiles - quantiles.mean(-1, keepdim=True)) / z).mean(-1)


def normality_bonus(
    quantiles: torch.Tensor, target_std: torch.Tensor, z: torch.Tensor, fallback: float = 0.0
) -> torch.Tensor:
    """Exploration bonus ``KL(N(m, sigma_t^2) || N(m, sigma_hat^2))`` from the learned quantiles.

    ``= log(sigma_hat / sigma_t) + sigma_t^2 / (2 sigma_hat^2) - 1/2``, zero exactly when the learned quantiles
    are the normal target's (``sigma_hat = sigma_t``). Where the quantiles are not monotone (``sigma_hat`` is
    not a meaningful std, possibly <= 0) the bonus is ``fallback``, as in the authors' code.
    """
    sigma_hat = fitted_std(quantiles, z)
    monotone = (quantiles[..., 1:] >= quantiles[..., :-1]).all(-1) & (sigma_hat > 0)
    safe_hat = torch.where(monotone, sigma_hat, torch.ones_like(sigma_hat))
    sigma_t = target_std.clamp(min=1e-8)
    kl = torch.log(safe_hat / sigma_t) + sigma_t.pow(2) / (2 * safe_hat.pow(2)) - 0.5
    return torch.where(monotone, kl, torch.full_like(kl, fallback))
