"""Normality-guided distributional critic: normal quantile targets, std schedule, quantile loss, bonus."""

import pytest
import scipy.stats
import torch

from control.losses.distributional import (
    fitted_std,
    normal_quantile_targets,
    normality_bonus,
    quantile_fractions,
    quantile_huber_loss,
    return_std_schedule,
    standard_normal_quantiles,
)


def test_quantile_fractions_are_i_over_n_plus_one():
    torch.testing.assert_close(quantile_fractions(4), torch.tensor([0.2, 0.4, 0.6, 0.8]))


@pytest.mark.parametrize(("mean", "std"), [(0.0, 1.0), (12.5, 3.0), (-4.0, 0.25)])
def test_normal_quantile_targets_match_scipy(mean, std):
    n = 8
    z = standard_normal_quantiles(n, torch.float64)
    taus = [i / (n + 1) for i in range(1, n + 1)]
    bars = normal_quantile_targets(
        torch.tensor([mean], dtype=torch.float64), torch.tensor([std], dtype=torch.float64), z
    )
    expected = torch.tensor(scipy.stats.norm.ppf(taus, loc=mean, scale=std))
    torch.testing.assert_close(bars[0], expected)
    assert abs(z.mean().item()) < 1e-12


def test_std_schedule_shrinks_linearly_in_variance_to_floor():
    t = torch.arange(0, 300)
    sigma = return_std_schedule(t, initial_variance=100.0, min_std=2.0, mean_episode_length=200.0)
    assert sigma[0].item() == pytest.approx(10.0)
    # halfway: variance 100 + 100 * (4 - 100) / 200 = 52
    assert sigma[100].item() == pytest.approx(52.0**0.5)
    assert torch.all(sigma[1:] <= sigma[:-1])
    assert sigma[200].item() == pytest.approx(2.0)
    assert torch.all(sigma[200:] == sigma[200])  # floored at sigma_min after L steps


def test_std_schedule_floor_when_returns_barely_vary():
    sigma = return_std_schedule(torch.arange(5), initial_variance=0.01, min_std=1.0, mean_episode_length=10.0)
    torch.testing.assert_close(sigma, torch.ones(5))


def test_bonus_is_zero_when_quantiles_equal_normal_target_and_positive_otherwise():
    z = standard_normal_quantiles(8)
    std = torch.tensor([0.5, 2.0, 7.0])
    bars = normal_quantile_targets(torch.tensor([1.0, -3.0, 40.0]), std, z)
    torch.testing.assert_close(fitted_std(bars, z), std)
    torch.testing.assert_close(normality_bonus(bars, std, z), torch.zeros(3), atol=1e-6, rtol=0)
    wider = normal_quantile_targets(torch.zeros(3), 2 * std, z)
    # KL(N(0, s^2) || N(0, 4 s^2)) = log 2 + 1/8 - 1/2
    torch.testing.assert_close(normality_bonus(wider, std, z), torch.full((3,), 0.6931472 + 0.125 - 0.5))


def test_bonus_falls_back_when_quantiles_cross():
    z = standard_normal_quantiles(4)
    crossing = torch.tensor([[0.0, 1.0, 0.5, 2.0]])
    assert normality_bonus(crossing, torch.ones(1), z, fallback=0.3).item() == pytest.approx(0.3)


def test_quantile_huber_loss_by_hand():
    taus = torch.tensor([0.25, 0.75])
    q = torch.tensor([[0.0, 0.0]])
    # target 2 (> kappa): u = 2 for both, huber = 1 * (2 - 0.5) = 1.5, weights tau
    loss = quantile_huber_loss(q, torch.tensor([[2.0]]), taus, kappa=1.0)
    assert loss.item() == pytest.approx(0.25 * 1.5 + 0.75 * 1.5)
    # pairwise, targets -0.5 and 0.5: u=-0.5 -> |0.25-1| * 0.125 ; u=0.5 -> 0.75 * 0.125
    loss = quantile_huber_loss(q, torch.tensor([[-0.5, 0.5]]), taus, kappa=1.0, pairwise=True)
    assert loss.item() == pytest.approx(0.75 * 0.125 + 0.75 * 0.125)


def test_quantile_regression_recovers_quantiles_of_samples():
    """Minimising the all-pairs loss (small kappa: pure quantile regression) over N(3, 2^2) samples lands
    on that normal's quantiles."""
    torch.manual_seed(0)
    taus = quantile_fractions(4)
    q = torch.zeros(1, 4, requires_grad=True)
    samples = 3.0 + 2.0 * torch.randn(1, 4000)
    opt = torch.optim.Adam([q], lr=0.05)
    for _ in range(800):
        opt.zero_grad()
        quantile_huber_loss(q, samples, taus, kappa=0.05).backward()
        opt.step()
    expected = torch.tensor(scipy.stats.norm.ppf(taus.numpy(), loc=3.0, scale=2.0), dtype=torch.float32)
    torch.testing.assert_close(q.detach()[0], expected, atol=0.15, rtol=0)
