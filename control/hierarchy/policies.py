"""Frozen policies that act in a composed task: primitives and transition policies loaded from control run
folders (greedy actions from a numpy copy of the actor, observations normalised with the run's frozen
statistics), and scripted policies for tests."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import gymnasium as gym
import numpy as np

from control.envs import VecNormalize
from control.networks import ActorCritic
from control.run import load_checkpoint
from control.samplers import linear_layers, mlp_forward


class Policy(Protocol):
    def act(self, obs: np.ndarray) -> np.ndarray:
        """The action for one observation (greedy)."""
        ...


class RunPolicy:
    """The greedy policy of a control run folder (`config.json` + `checkpoint.pt`), Gaussian MLP actors."""

    def __init__(self, run: Path, obs_space: gym.Space, action_space: gym.Space):
        run = Path(run)
        for name in ("config.json", "checkpoint.pt"):
            if not (run / name).is_file():
                raise FileNotFoundError(f"{run / name}: not a trained control run (missing {name})")
        config = json.loads((run / "config.json").read_text())
        state = load_checkpoint(run / "checkpoint.pt")
        agent = ActorCritic(obs_space, action_space, tuple(config.get("hidden", (64, 64))))
        agent.load_state_dict(state["agent"])
        if agent.kind != "gaussian":
            raise ValueError(
                f"{run}: a hierarchy policy must be a Gaussian (continuous) actor, not {agent.kind}"
            )
        self.layers = [
            (m.weight.detach().numpy().T.astype(np.float64), m.bias.detach().numpy().astype(np.float64))
            for m in linear_layers(agent.actor)
        ]
        self.norm = None
        if state.get("norm"):
            self.norm = VecNormalize(obs_space.shape, 1, config.get("gamma", 0.99))
            self.norm.load_state_dict(state["norm"])
        self.low, self.high = action_space.low, action_space.high
        self.global_step = int(state["global_step"])
        self.obs_dim = int(np.prod(obs_space.shape))

    def normalise(self, obs: np.ndarray) -> np.ndarray:
        x = np.asarray(obs, dtype=np.float64)[None]
        return self.norm.apply_obs(x).astype(np.float64) if self.norm is not None else x

    def act(self, obs: np.ndarray) -> np.ndarray:
        return np.clip(mlp_forward(self.layers, self.normalise(obs))[0], self.low, self.high)


class ScriptedPolicy:
    """A hand-written controller `fn(obs) -> action` (tests, baselines)."""

    def __init__(self, fn: Callable[[np.ndarray], np.ndarray]):
        self.fn = fn

    def act(self, obs: np.ndarray) -> np.ndarray:
        return np.asarray(self.fn(obs), dtype=np.float64)
