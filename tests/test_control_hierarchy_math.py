"""AIRL's logits, reward and discriminator loss, and the Double-DQN target, against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

from control.hierarchy.airl import airl_logits, airl_reward, discriminator_loss
from control.hierarchy.switch import double_dqn_targets, epsilon_at


def test_airl_logits_by_hand():
    g, h, h_next = torch.tensor([0.5, -1.0]), torch.tensor([0.2, 0.3]), torch.tensor([1.0, 2.0])
    log_pi, terminal = torch.tensor([-1.5, -0.5]), torch.tensor([0.0, 1.0])
    logits = airl_logits(g, h, h_next, log_pi, 0.9, terminal)
    # f = g + 0.9 h' - h (h' dropped after a terminal step); logit = f - log pi
    assert logits.tolist() == pytest.approx([0.5 + 0.9 * 1.0 - 0.2 + 1.5, -1.0 - 0.3 + 0.5])


def test_airl_reward_is_minus_log_one_minus_d():
    logits = torch.tensor([-3.0, 0.0, 2.0, 40.0])
    d = torch.sigmoid(logits[:3])
    assert airl_reward(logits[:3]).tolist() == pytest.approx((-torch.log(1 - d)).tolist(), rel=1e-6)
    assert airl_reward(torch.tensor([0.0])).item() == pytest.approx(math.log(2.0))
    assert airl_reward(logits)[-1].item() == pytest.approx(40.0)  # stable where 1 - D underflows


def test_discriminator_loss_by_hand():
    expert, policy = torch.tensor([2.0, 0.0]), torch.tensor([-1.0, 1.0])
    sig = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    expected = (
        -(math.log(sig(2.0)) + math.log(sig(0.0))) / 2
        - (math.log(1 - sig(-1.0)) + math.log(1 - sig(1.0))) / 2
    )
    assert discriminator_loss(expert, policy).item() == pytest.approx(expected, rel=1e-6)
    # a discriminator that separates the two sides perfectly has a loss near 0
    assert discriminator_loss(torch.tensor([30.0]), torch.tensor([-30.0])).item() < 1e-10


def test_discriminator_loss_gradient_pushes_expert_up_and_policy_down():
    expert, policy = torch.zeros(3, requires_grad=True), torch.zeros(3, requires_grad=True)
    discriminator_loss(expert, policy).backward()
    assert (expert.grad < 0).all() and (policy.grad > 0).all()


def test_double_dqn_target_chooses_with_online_and_evaluates_with_target():
    rewards, dones = torch.tensor([1.0, 0.0, -1.0]), torch.tensor([0.0, 0.0, 1.0])
    online = torch.tensor([[0.0, 5.0], [3.0, 1.0], [9.0, 0.0]])  # picks actions 1, 0, 0
    target = torch.tensor([[7.0, 2.0], [4.0, 8.0], [6.0, 6.0]])
    y = double_dqn_targets(rewards, dones, online, target, 0.5)
    # 1 + 0.5 * target[0, 1]; 0 + 0.5 * target[1, 0]; done: the reward alone
    assert y.tolist() == pytest.approx([1.0 + 0.5 * 2.0, 0.5 * 4.0, -1.0])
    plain_dqn = rewards + 0.5 * (1 - dones) * target.max(-1).values
    assert not torch.allclose(y, plain_dqn)  # the target net's own argmax would give 7 and 8


def test_epsilon_decays_linearly_then_stays():
    assert epsilon_at(0, 1.0, 0.01, 100) == 1.0
    assert epsilon_at(50, 1.0, 0.01, 100) == pytest.approx(0.505)
    assert epsilon_at(100, 1.0, 0.01, 100) == pytest.approx(0.01)
    assert epsilon_at(500, 1.0, 0.01, 100) == pytest.approx(0.01)


def test_an_exploratory_switch_episode_hands_over_at_a_uniformly_drawn_step():
    import numpy as np

    from control.hierarchy.switch import SwitchSettings, exploratory_handover

    rng = np.random.default_rng(0)
    settings = SwitchSettings(explore_steps=10)
    steps = [exploratory_handover(settings, 1.0, rng) for _ in range(5000)]
    counts = np.bincount(steps, minlength=10)
    assert len(counts) == 10 and counts.min() > 400  # every step in [0, 10) drawn, about 500 times each
    assert exploratory_handover(settings, 0.0, rng) is None  # greedy
    share = np.mean([exploratory_handover(settings, 0.3, rng) is not None for _ in range(5000)])
    assert share == pytest.approx(0.3, abs=0.03)
    assert exploratory_handover(SwitchSettings(exploration="step"), 1.0, rng) is None
    with pytest.raises(ValueError, match="exploration='episodes'"):
        SwitchSettings(exploration="episodes")
    with pytest.raises(ValueError, match="explore_steps=0"):
        SwitchSettings(explore_steps=0)
