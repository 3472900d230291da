"""The closed-form distributions against torch.distributions, and the rollout samplers against the network."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from torch.distributions import Categorical, Normal

from control.distributions import categorical_sample, categorical_terms, gaussian_entropy, gaussian_log_prob
from control.networks import ActorCritic
from control.samplers import NumpyMLPSampler, TorchSampler, make_sampler


def test_gaussian_matches_torch():
    torch.manual_seed(0)
    mean, log_std, action = torch.randn(5, 3), torch.randn(3) * 0.5, torch.randn(5, 3)
    ref = Normal(mean, log_std.exp().expand_as(mean))
    torch.testing.assert_close(gaussian_log_prob(action, mean, log_std), ref.log_prob(action).sum(-1))
    torch.testing.assert_close(gaussian_entropy(log_std, 5), ref.entropy().sum(-1))


def test_gaussian_hand_computed():
    # N(0; 0, 1) in one dimension: -0.5 * log(2 pi) = -0.918939; entropy 0.5 + 0.5 log(2 pi) = 1.418939
    lp = gaussian_log_prob(torch.zeros(1, 1), torch.zeros(1, 1), torch.zeros(1))
    assert lp.item() == pytest.approx(-0.918939, abs=1e-6)
    assert gaussian_entropy(torch.zeros(1), 1).item() == pytest.approx(1.418939, abs=1e-6)


def test_categorical_terms_match_torch_for_multi_discrete():
    torch.manual_seed(0)
    sizes = [3, 5, 2]
    logits, action = torch.randn(4, 10), torch.stack([torch.randint(0, n, (4,)) for n in sizes], -1)
    log_prob, entropy = categorical_terms(logits, sizes, action)
    dists = [Categorical(logits=c) for c in torch.split(logits, sizes, -1)]
    torch.testing.assert_close(log_prob, sum(d.log_prob(action[:, i]) for i, d in enumerate(dists)))
    torch.testing.assert_close(entropy, sum(d.entropy() for d in dists))


def test_categorical_sample_frequencies_and_greedy():
    torch.manual_seed(0)
    logits = torch.tensor([[0.0, 1.0, 2.0]]).expand(20_000, 3)
    sample, greedy = categorical_sample(logits, [3])
    freq = torch.bincount(sample[:, 0], minlength=3).float() / 20_000
    torch.testing.assert_close(freq, torch.softmax(logits[0], -1), atol=0.015, rtol=0)
    assert (greedy == 2).all()


SPACES = {
    "gaussian": gym.spaces.Box(-1, 1, (3,)),
    "discrete": gym.spaces.Discrete(4),
    "multidiscrete": gym.spaces.MultiDiscrete([3, 11]),
}


@pytest.mark.parametrize("kind", list(SPACES))
def test_numpy_sampler_log_prob_and_value_equal_the_network(kind):
    torch.manual_seed(0)
    agent = ActorCritic(gym.spaces.Box(-5, 5, (6,)), SPACES[kind])
    with torch.no_grad():  # make the head non-trivial (its init gain is 0.01)
        for p in agent.parameters():
            p.add_(0.3 * torch.randn_like(p))
    sampler = NumpyMLPSampler(agent, seed=0)
    obs = np.random.default_rng(1).standard_normal((7, 6)).astype(np.float32)
    action, log_prob, value = sampler.act(obs)
    with torch.no_grad():
        _, ref_lp, _, _, ref_v, _ = agent.distribution_terms(torch.from_numpy(obs), torch.as_tensor(action))
    np.testing.assert_allclose(log_prob, ref_lp.numpy(), atol=1e-5)
    np.testing.assert_allclose(value, ref_v.numpy(), atol=1e-5)
    np.testing.assert_allclose(sampler.value(obs), ref_v.numpy(), atol=1e-5)


def test_numpy_sampler_distribution_and_sync():
    torch.manual_seed(0)
    agent = ActorCritic(gym.spaces.Box(-5, 5, (2,)), gym.spaces.Discrete(3))
    with torch.no_grad():
        agent.actor[-1].bias.copy_(torch.tensor([0.0, 1.0, 2.0]))
    sampler = NumpyMLPSampler(agent, seed=0)
    obs = np.zeros((20_000, 2), np.float32)
    action, _, _ = sampler.act(obs)
    with torch.no_grad():
        probs = torch.softmax(agent.actor(torch.from_numpy(obs[:1])), -1)[0].numpy()
    np.testing.assert_allclose(np.bincount(action, minlength=3) / 20_000, probs, atol=0.015)
    with torch.no_grad():  # the sampler holds a copy until sync()
        agent.actor[-1].bias.copy_(torch.tensor([10.0, 0.0, 0.0]))
    assert (sampler.act(obs[:100])[0] != 0).any()
    sampler.sync()
    assert (sampler.act(obs[:100])[0] == 0).all()


def test_numpy_sampler_gaussian_moments_and_resume():
    torch.manual_seed(0)
    agent = ActorCritic(gym.spaces.Box(-5, 5, (2,)), gym.spaces.Box(-1, 1, (2,)))
    with torch.no_grad():
        agent.log_std.copy_(torch.tensor([-1.0, 0.5]))
    sampler = NumpyMLPSampler(agent, seed=3)
    obs = np.zeros((20_000, 2), np.float32)
    action, _, _ = sampler.act(obs)
    np.testing.assert_allclose(action.std(0), np.exp([-1.0, 0.5]), rtol=0.03)
    state = sampler.state_dict()
    first = sampler.act(obs[:5])[0]
    sampler.load_state_dict(state)
    np.testing.assert_array_equal(sampler.act(obs[:5])[0], first)


def test_make_sampler_picks_torch_for_images():
    agent = ActorCritic(gym.spaces.Box(0, 255, (4, 84, 84), np.uint8), gym.spaces.Discrete(6))
    sampler = make_sampler(agent, 0)
    assert isinstance(sampler, TorchSampler)
    action, log_prob, value = sampler.act(np.zeros((2, 4, 84, 84), np.uint8))
    assert action.shape == (2,) and log_prob.shape == (2,) and value.shape == (2,)
    with pytest.raises(ValueError, match="vector observations"):
        NumpyMLPSampler(agent, 0)
