"""PPG (proximal policy gradient) loss: gradient is the vanilla policy gradient; clipping zeroes it exactly."""

import math

import pytest
import torch

from control.losses.ppg import ppg_active_mask, ppg_objective, ppg_policy_loss


def _small_policy(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    weight = torch.randn(4, 3, generator=g, requires_grad=True)
    obs = torch.randn(16, 4, generator=g)
    actions = torch.randint(0, 3, (16,), generator=g)
    advantages = torch.randn(16, generator=g)
    return weight, obs, actions, advantages


def _log_prob(weight, obs, actions):
    return torch.log_softmax(obs @ weight, -1).gather(1, actions[:, None]).squeeze(1)


def test_ppg_gradient_equals_vanilla_policy_gradient_off_policy():
    weight, obs, actions, advantages = _small_policy()
    with torch.no_grad():  # an old policy a little away from the current one: r != 1
        old_log_prob = _log_prob(weight + 0.01 * torch.randn_like(weight), obs, actions)
    log_prob = _log_prob(weight, obs, actions)
    assert not torch.allclose(log_prob, old_log_prob)
    assert ppg_active_mask((log_prob - old_log_prob).exp(), advantages, 0.2).all()

    loss, _ = ppg_policy_loss(log_prob, old_log_prob, advantages, clip_eps=0.2)
    (grad_ppg,) = torch.autograd.grad(loss, weight)
    vanilla = -(advantages * _log_prob(weight, obs, actions)).mean()
    (grad_vanilla,) = torch.autograd.grad(vanilla, weight)
    torch.testing.assert_close(grad_ppg, grad_vanilla)

    # PPO's surrogate r * A does not have this gradient off-policy (r != 1): the test can tell them apart.
    ratio = (_log_prob(weight, obs, actions) - old_log_prob).exp()
    (grad_ppo,) = torch.autograd.grad(-(ratio * advantages).mean(), weight)
    assert not torch.allclose(grad_ppo, grad_vanilla, atol=1e-6)


@pytest.mark.parametrize(
    ("ratio", "advantage", "zero_grad"),
    [
        (1.3, 1.0, True),  # A > 0 and r > 1 + eps: clipped
        (1.3, -1.0, False),  # A < 0 and r > 1 + eps: must be undone, gradient flows
        (0.7, -1.0, True),  # A < 0 and r < 1 - eps: clipped
        (0.7, 1.0, False),  # A > 0 and r < 1 - eps: gradient flows
        (1.1, 1.0, False),  # inside the trust band: always flows
        (0.9, -1.0, False),
        (1.0 + 0.2 - 1e-4, 2.0, False),  # just inside the boundary
        (1.0 + 0.2 + 1e-4, 2.0, True),  # just outside
    ],
)
def test_ppg_clipping_region_zeroes_gradient_exactly(ratio, advantage, zero_grad):
    log_prob = torch.tensor([math.log(ratio)], requires_grad=True)
    old = torch.zeros(1)
    adv = torch.tensor([advantage])
    ppg_objective(log_prob, old, adv, clip_eps=0.2).sum().backward()
    if zero_grad:
        assert log_prob.grad.item() == 0.0
    else:
        assert log_prob.grad.item() == pytest.approx(advantage)  # d(A log r)/d log pi = A
    assert bool(ppg_active_mask(torch.tensor([ratio]), adv, 0.2)) is not zero_grad


def test_ppg_objective_value_and_stats_by_hand():
    log_prob = torch.log(torch.tensor([1.5, 0.5, 1.0]))
    adv = torch.tensor([2.0, -1.0, 3.0])
    obj = ppg_objective(log_prob, torch.zeros(3), adv, clip_eps=0.2)
    expected = torch.tensor([2.0 * math.log(1.2), -1.0 * math.log(0.8), 0.0])
    torch.testing.assert_close(obj, expected)
    loss, stats = ppg_policy_loss(log_prob, torch.zeros(3), adv, clip_eps=0.2)
    assert loss.item() == pytest.approx(-expected.mean().item())
    assert stats["clip_fraction"].item() == pytest.approx(2 / 3)


def test_ppg_rejects_bad_clip():
    with pytest.raises(ValueError, match="clip_eps"):
        ppg_objective(torch.zeros(2), torch.zeros(2), torch.ones(2), clip_eps=1.5)
