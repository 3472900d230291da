"""Quantile critic: the 'normal' mode learns the normal bars (bonus -> 0), the 'quantile' mode the data's spread."""

import pytest
import torch

from control.algos.ndppo_critic import QuantileCritic, exploration_bonus, quantile_critic_loss
from control.losses.distributional import fitted_std


@pytest.fixture(autouse=True)
def _one_thread():
    """Small MLPs: one torch thread is fastest and avoids oversubscription on a shared CPU."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _fit(mode: str, returns: torch.Tensor, obs: torch.Tensor, std: torch.Tensor) -> QuantileCritic:
    torch.manual_seed(0)
    critic = QuantileCritic(obs_dim=obs.shape[1], num_quantiles=8)
    opt = torch.optim.Adam(critic.parameters(), lr=5e-3)
    for _ in range(800):
        opt.zero_grad()
        quantile_critic_loss(critic(obs), returns, std, critic.taus, critic.z, mode=mode).backward()
        opt.step()
    return critic


def test_normal_mode_learns_target_bars_and_bonus_vanishes():
    torch.manual_seed(1)
    obs = torch.randn(64, 3)
    returns = obs[:, 0] * 2.0 + 1.0
    std = 0.5 + obs[:, 1].abs()
    critic = _fit("normal", returns, obs, std)
    with torch.no_grad():
        torch.testing.assert_close(critic.value(obs), returns, atol=0.15, rtol=0)
        torch.testing.assert_close(fitted_std(critic(obs), critic.z), std, atol=0.25, rtol=0)
    untrained = QuantileCritic(obs_dim=3)
    assert (
        exploration_bonus(critic, obs, std, coef=1.0).mean()
        < 0.2 * exploration_bonus(untrained, obs, std, coef=1.0, fallback=10.0).mean()
    )


def test_quantile_mode_learns_spread_of_sampled_returns():
    torch.manual_seed(2)
    obs = torch.zeros(512, 2)
    returns = 3.0 + 2.0 * torch.randn(512)  # same state, noisy returns: spread comes from the data
    critic = _fit("quantile", returns, obs, std=None)
    with torch.no_grad():
        sigma_hat = fitted_std(critic(obs[:1]), critic.z).item()
    assert sigma_hat == pytest.approx(2.0, abs=0.4)


def test_critic_loss_names_bad_mode_and_missing_std():
    q = torch.zeros(2, 8)
    critic = QuantileCritic(obs_dim=1)
    with pytest.raises(ValueError, match="critic mode"):
        quantile_critic_loss(q, torch.zeros(2), None, critic.taus, critic.z, mode="gauss")
    with pytest.raises(ValueError, match="target_std"):
        quantile_critic_loss(q, torch.zeros(2), None, critic.taus, critic.z, mode="normal")
