"""Normality guidance component: reward bonus per step, switchable bonus, settings validation."""

import numpy as np
import pytest
import torch

from control.algos.ndppo_critic import QuantileCritic, exploration_bonus
from control.algos.ndppo_guidance import NormalityGuidance, NormalityGuidanceSettings
from control.losses.distributional import normality_bonus


def test_bonus_uses_the_schedule_at_each_envs_current_step():
    torch.manual_seed(0)
    settings = NormalityGuidanceSettings(bonus=True, bonus_coef=0.05, min_std=1.5, fallback_bonus=0.7)
    critic = QuantileCritic(obs_dim=3)
    guide = NormalityGuidance(settings, critic, num_envs=2)
    obs = torch.randn(2, 3)
    bonus = guide.bonus(obs)
    expected = 0.05 * normality_bonus(critic(obs).detach(), torch.full((2,), 1.5), critic.z, fallback=0.7)
    np.testing.assert_allclose(bonus, expected.numpy(), rtol=1e-5)
    assert np.all(bonus != 0)
    assert guide.observe(np.array([1.0, -1.0]), np.array([False, True])).tolist() == [0, 0]
    assert guide.observe(np.array([1.0, -1.0]), np.array([False, False])).tolist() == [1, 0]


def test_bonus_switch_off_gives_zeros_and_critic_loss_runs():
    settings = NormalityGuidanceSettings(critic_mode="quantile", bonus=False)
    guide = NormalityGuidance(settings, QuantileCritic(obs_dim=3), num_envs=2)
    np.testing.assert_array_equal(guide.bonus(torch.zeros(2, 3)), [0.0, 0.0])
    loss = guide.critic_loss(torch.zeros(4, 3), torch.ones(4), torch.zeros(4, dtype=torch.long))
    assert loss.ndim == 0 and loss.item() > 0


@pytest.mark.parametrize("sort", [False, True])
def test_numpy_bonus_equals_the_torch_reference_and_follows_the_critic(sort):
    """The per-step bonus (numpy) is `exploration_bonus` (torch) at every env's own sigma_t, monotone or not
    (fallback), and after an update (`critic_changed`) it uses the new weights."""
    torch.manual_seed(1)
    settings = NormalityGuidanceSettings(bonus=True, min_std=0.3, fallback_bonus=0.25, sort_quantiles=sort)
    critic = QuantileCritic(obs_dim=5, sort=sort)
    with torch.no_grad():  # quantiles near increasing bars, crossing in some rows only
        critic.net[-1].weight.mul_(0.5)
        critic.net[-1].bias.copy_(critic.z)
    guide = NormalityGuidance(settings, critic, num_envs=64)
    rng = np.random.default_rng(0)
    for _ in range(400):  # episodes of different lengths and returns: sigma_0 and L move away from the floor
        guide.observe(rng.normal(size=64), rng.random(64) < 0.02)
    assert guide.clock.ready and len(set(guide.clock.steps.tolist())) > 10

    def reference(obs):
        sigma = guide.clock.std(torch.as_tensor(guide.clock.steps))
        return exploration_bonus(critic, torch.as_tensor(obs), sigma, 0.05, 0.25).numpy()

    obs = rng.normal(size=(64, 5)).astype(np.float32)
    first = guide.bonus(obs)
    np.testing.assert_allclose(first, reference(obs), rtol=2e-5, atol=1e-7)
    if not sort:  # where the quantiles cross the bonus is the fallback
        assert np.any(np.isclose(first, 0.05 * 0.25)) and not np.all(np.isclose(first, 0.05 * 0.25))
    with torch.no_grad():
        for p in critic.parameters():
            p.add_(0.1 * torch.randn_like(p))
    np.testing.assert_allclose(guide.bonus(obs), first)  # the copy is kept until the critic changed
    guide.critic_changed()
    np.testing.assert_allclose(guide.bonus(obs), reference(obs), rtol=2e-5, atol=1e-7)
    assert not np.allclose(guide.bonus(obs), first)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"critic_mode": "gauss"}, "critic_mode"),
        ({"num_quantiles": 7}, "num_quantiles"),
        ({"critic_mode": "quantile", "bonus": True}, "bonus"),
    ],
)
def test_settings_name_the_field_at_fault(kwargs, message):
    with pytest.raises(ValueError, match=message):
        NormalityGuidanceSettings(**kwargs)
