"""Actor-critic networks: MLPs for vector observations, the Nature CNN for Atari; discrete, multi-discrete and
Gaussian action heads."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch
from torch import nn
from torch.distributions import Categorical, Normal


def layer(in_dim: int, out_dim: int, gain: float = np.sqrt(2)) -> nn.Linear:
    lin = nn.Linear(in_dim, out_dim)
    nn.init.orthogonal_(lin.weight, gain)
    nn.init.zeros_(lin.bias)
    return lin


def mlp(
    in_dim: int, out_dim: int, hidden: tuple[int, ...] = (64, 64), out_gain: float = 1.0
) -> nn.Sequential:
    dims, mods = (in_dim, *hidden), []
    for a, b in zip(dims[:-1], dims[1:], strict=True):
        mods += [layer(a, b), nn.Tanh()]
    return nn.Sequential(*mods, layer(dims[-1], out_dim, out_gain))


class NatureCNN(nn.Module):
    """Mnih et al. (2015): 3 conv layers + 512 units on 4 stacked 84x84 frames scaled to [0, 1]."""

    def __init__(self, channels: int = 4):
        super().__init__()
        conv = lambda i, o, k, s: nn.Conv2d(i, o, k, s)  # noqa: E731
        self.net = nn.Sequential(
            conv(channels, 32, 8, 4),
            nn.ReLU(),
            conv(32, 64, 4, 2),
            nn.ReLU(),
            conv(64, 64, 3, 1),
            nn.ReLU(),
            nn.Flatten(),
            layer(64 * 7 * 7, 512),
            nn.ReLU(),
        )
        for m in self.net:
            if isinstance(m, nn.Conv2d):
                nn.init.orthogonal_(m.weight, np.sqrt(2))
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.float() / 255.0)


class ActorCritic(nn.Module):
    """`act(obs)` samples; `evaluate(obs, action)` gives log pi(a|s), pi(a|s) (discrete kinds), entropy, V(s)."""

    def __init__(self, obs_space: gym.Space, action_space: gym.Space, hidden: tuple[int, ...] = (64, 64)):
        super().__init__()
        self.action_space = action_space
        if isinstance(action_space, gym.spaces.Discrete):
            self.kind, self.nvec, out = "discrete", [int(action_space.n)], int(action_space.n)
        elif isinstance(action_space, gym.spaces.MultiDiscrete):
            self.kind, self.nvec = "multidiscrete", [int(n) for n in action_space.nvec]
            out = sum(self.nvec)
        elif isinstance(action_space, gym.spaces.Box):
            self.kind, out = "gaussian", int(np.prod(action_space.shape))
            self.log_std = nn.Parameter(torch.zeros(out))
        else:
            raise ValueError(f"unsupported action space {action_space}")
        self.image = len(obs_space.shape) == 3
        if self.image:
            self.trunk = NatureCNN(obs_space.shape[0])
            self.actor, self.critic = layer(512, out, 0.01), layer(512, 1, 1.0)
        else:
            size = int(np.prod(obs_space.shape))
            self.actor, self.critic = mlp(size, out, hidden, 0.01), mlp(size, 1, hidden, 1.0)

    def _features(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.image:
            h = self.trunk(obs)
            return h, h
        return obs, obs

    def value(self, obs: torch.Tensor) -> torch.Tensor:
        return self.critic(self._features(obs)[1]).squeeze(-1)

    def _dists(self, out: torch.Tensor):
        # argument validation costs ~10% of a small-MLP step on CPU; the network's outputs are valid by construction
        if self.kind == "gaussian":
            return [Normal(out, self.log_std.exp().expand_as(out), validate_args=False)]
        return [Categorical(logits=chunk, validate_args=False) for chunk in torch.split(out, self.nvec, dim=-1)]

    def distribution_terms(self, obs: torch.Tensor, action: torch.Tensor | None = None):
        """(action, log_prob, prob or None, entropy, value, greedy action)."""
        a_in, c_in = self._features(obs)
        dists = self._dists(self.actor(a_in))
        value = self.critic(c_in).squeeze(-1)
        if self.kind == "gaussian":
            d = dists[0]
            action = d.sample() if action is None else action
            return action, d.log_prob(action).sum(-1), None, d.entropy().sum(-1), value, d.mean
        if action is None:
            action = torch.stack([d.sample() for d in dists], -1)
        parts = action.long().reshape(action.shape[0], -1)
        log_prob = sum(d.log_prob(parts[:, i]) for i, d in enumerate(dists))
        entropy = sum(d.entropy() for d in dists)
        greedy = torch.stack([d.probs.argmax(-1) for d in dists], -1)
        if self.kind == "discrete":
            action, greedy = action.reshape(-1), greedy.reshape(-1)
        return action, log_prob, log_prob.exp(), entropy, value, greedy
