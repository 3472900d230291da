"""Normality guidance component: reward bonus per step, switchable bonus, settings validation."""

import numpy as np
import pytest
import torch

from control.algos.ndppo_critic import QuantileCritic
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
