"""Control losses against hand-computed values and autograd; the symmetric losses reduce to PPO/A2C."""

import numpy as np
import pytest
import torch

from control.envs import DiscretizeAction, GaussianRewardNoise, RewardSignFlip
from control.losses.advantages import gae
from control.losses.policy import a2c_loss, ppo_loss, sa2c_loss, sppo_gate, sppo_loss, value_loss


def test_ppo_hand_computed():
    old = torch.log(torch.tensor([0.5, 0.5]))
    new = torch.log(torch.tensor([0.75, 0.25]))  # ratios 1.5 and 0.5
    loss, stats = ppo_loss(new, old, torch.tensor([1.0, 1.0]), 0.2)
    assert loss.item() == pytest.approx(-(1.2 + 0.5) / 2)
    assert stats["clip_fraction"].item() == pytest.approx(1.0)


def test_symmetric_losses_with_beta_zero_are_exactly_ppo_and_a2c():
    torch.manual_seed(0)
    logp = torch.randn(16).clamp(max=-0.01).requires_grad_()
    old, adv = logp.detach() + 0.1 * torch.randn(16), torch.randn(16)
    assert torch.equal(
        sppo_loss(logp, old, adv, logp.exp(), 0.2, 1.0, 0.0)[0], ppo_loss(logp, old, adv, 0.2)[0]
    )
    assert torch.equal(sa2c_loss(logp, adv, logp.exp(), 1.0, 0.0)[0], a2c_loss(logp, adv)[0])


def test_sppo_reverse_term_hand_computed_and_gradient_equals_ppo_inside_gate():
    old = torch.log(torch.tensor([0.5]))
    logp = torch.log(torch.tensor([0.55])).requires_grad_()
    adv = torch.tensor([2.0])
    loss, stats = sppo_loss(logp, old, adv, logp.exp(), 0.2, alpha=0.0, beta=1.0, z=-1.0)
    assert loss.item() == pytest.approx(2 * 0.45 / 0.5) and stats["gate_open"].item() == 1.0
    (g_rev,) = torch.autograd.grad(loss, logp)
    (g_ppo,) = torch.autograd.grad(ppo_loss(logp, old, adv, 0.2)[0], logp)
    torch.testing.assert_close(g_rev, g_ppo)
    # Z = -6 scales the gradient by |Z|
    loss6, _ = sppo_loss(logp, old, adv, logp.exp(), 0.2, alpha=0.0, beta=1.0, z=-6.0)
    (g6,) = torch.autograd.grad(loss6, logp)
    torch.testing.assert_close(g6, 6 * g_ppo)


def test_sppo_gate_matches_the_authors_rule():
    ratio = torch.tensor([1.1, 1.5, 0.5, 1.5, 0.5])
    adv = torch.tensor([1.0, 1.0, 1.0, -1.0, -1.0])
    # inside; A>0 r>1+eps: min picks clipped -> 0; A>0 r<1-eps: unclipped chosen -> 1; A<0 r>1+eps: unclipped -> 1; A<0 r<1-eps: clipped -> 0
    assert sppo_gate(ratio, adv, 0.2).tolist() == [1.0, 0.0, 1.0, 1.0, 0.0]


def test_sa2c_reverse_gradient_by_autograd():
    logp = torch.log(torch.tensor([0.3, 0.6])).requires_grad_()
    adv = torch.tensor([1.0, -2.0])
    loss, _ = sa2c_loss(logp, adv, logp.exp(), alpha=0.0, beta=1.0, z=-1.0)
    (g,) = torch.autograd.grad(loss, logp)
    # d/dlogp of -(Z A (1 - e^logp))/2 with Z=-1 = -(A e^logp)/2
    torch.testing.assert_close(g, -(adv * logp.exp()).detach() / 2)


def test_gae_hand_computed_with_episode_boundary():
    rewards = torch.tensor([[1.0], [1.0], [1.0]])
    values = torch.tensor([[0.5], [0.4], [0.3]])
    dones = torch.tensor([[0.0], [0.0], [1.0]])  # observation 2 starts a new episode
    adv, ret = gae(rewards, values, dones, torch.tensor([0.2]), torch.tensor([0.0]), gamma=0.9, lam=0.5)
    a2 = 1.0 + 0.9 * 0.2 - 0.3
    a1 = 1.0 + 0.0 - 0.4  # episode ended after step 1
    a0 = (1.0 + 0.9 * 0.4 - 0.5) + 0.9 * 0.5 * a1
    assert adv[:, 0].tolist() == pytest.approx([a0, a1, a2])
    torch.testing.assert_close(ret, adv + values)


def test_value_loss_clipping():
    v, old, ret = torch.tensor([2.0]), torch.tensor([0.0]), torch.tensor([3.0])
    assert value_loss(v, ret).item() == pytest.approx(0.5)
    assert value_loss(v, ret, old, 0.5).item() == pytest.approx(0.5 * 6.25)


def test_noise_and_discretisation_wrappers():
    import gymnasium as gym

    env = RewardSignFlip(gym.make("CartPole-v1"), p=1.0, seed=0)
    env.reset(seed=0)
    assert env.step(0)[1] == -1.0
    env = GaussianRewardNoise(gym.make("CartPole-v1"), sigma=0.05, seed=0)
    env.reset(seed=0)
    rewards = [env.step(env.action_space.sample())[1] for _ in range(5)]
    assert all(abs(r - 1.0) < 0.3 for r in rewards) and len(set(rewards)) > 1
    env = DiscretizeAction(gym.make("Pendulum-v1"), bins=11)
    assert env.action_space.nvec.tolist() == [11]
    assert env.action(np.array([0]))[0] == pytest.approx(-2.0) and env.action(np.array([10]))[
        0
    ] == pytest.approx(2.0)


@pytest.mark.parametrize("z", [-1.0, -6.0])
def test_sppo_update_is_rescaled_ppo_update(z):
    """With the whole loss of one minibatch (policy + value + entropy) through a real multi-discrete actor-critic,
    and ratios on both sides of the clip: grad SPPO(alpha, beta, Z) = s * grad PPO(vf / s, ent / s), with
    s = alpha + beta * |Z|. This is why the benchmark's "ppo-rescaled" control is the right ablation."""
    import gymnasium as gym

    from control.networks import ActorCritic

    torch.manual_seed(0)
    agent = ActorCritic(gym.spaces.Box(-1, 1, (5,)), gym.spaces.MultiDiscrete([11, 11, 11]))
    obs, action = torch.randn(64, 5), torch.randint(0, 11, (64, 3))
    with torch.no_grad():
        old = agent.distribution_terms(obs, action)[1] + 0.4 * torch.randn(64)  # ratios from ~0.3 to ~3
    adv, ret = torch.randn(64), torch.randn(64)
    alpha, beta, vf, ent = 0.5, 1.0, 0.5, 0.01
    scale = alpha + beta * abs(z)

    def grad(policy_loss, vf_coef, ent_coef):
        agent.zero_grad()
        _, logp, prob, entropy, value, _ = agent.distribution_terms(obs, action)
        pg, _ = policy_loss(logp, prob)
        (pg - ent_coef * entropy.mean() + vf_coef * value_loss(value, ret)).backward()
        return torch.cat([p.grad.flatten() for p in agent.parameters()])

    g_sppo = grad(lambda lp, p: sppo_loss(lp, old, adv, p, 0.2, alpha, beta, z), vf, ent)
    g_ppo = grad(lambda lp, p: ppo_loss(lp, old, adv, 0.2), vf / scale, ent / scale)
    ratio = (agent.distribution_terms(obs, action)[1] - old).exp()
    assert 0 < sppo_gate(ratio, adv, 0.2).mean() < 1  # both open and closed samples
    torch.testing.assert_close(g_sppo, scale * g_ppo, rtol=1e-4, atol=1e-6)
    assert not torch.allclose(g_sppo, scale * grad(lambda lp, p: ppo_loss(lp, old, adv, 0.2), vf, ent))
