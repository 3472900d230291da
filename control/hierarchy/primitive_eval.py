"""How well a trained primitive does its own job: greedy episodes in its own env, counted as successes (the env's
`info["success"]` on the last step) and, for the others, by how they ended (a fall, touching an obstacle, the time
limit), with the distance reached. The benchmark's primitive table and the check that a primitive is good enough
to compose come from here."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from control.hierarchy.policies import Policy, RunPolicy

EVAL_SEED = 20_000


@dataclass
class PrimitiveSuccess:
    """Outcome counts of `episodes` greedy episodes of one primitive in its own env."""

    episodes: int
    successes: int
    falls: int
    collisions: int
    timeouts: int
    mean_length: float
    mean_final_x: float
    steps_trained: int = 0
    lengths: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def episode_outcome(info: dict[str, Any], terminated: bool) -> str:
    """'success', 'collision', 'fall' or 'timeout' for an episode's last step."""
    if info.get("success"):
        return "success"
    if terminated:
        return "collision" if info.get("collision") else "fall"
    return "timeout"


def primitive_success(
    env: gym.Env, policy: Policy, episodes: int = 30, seed: int = EVAL_SEED, max_steps: int = 5_000
) -> PrimitiveSuccess:
    """Run `episodes` greedy episodes of `policy` in `env` (seeds `seed`, `seed + 1`, ...) and count outcomes."""
    outcomes, lengths, final_x = [], [], []
    for k in range(episodes):
        obs, info = env.reset(seed=seed + k)
        terminated, length = False, 0
        while length < max_steps:
            obs, _, terminated, truncated, info = env.step(policy.act(obs))
            length += 1
            if terminated or truncated:
                break
        outcomes.append(episode_outcome(info, terminated))
        lengths.append(length)
        final_x.append(float(info.get("x_position", np.nan)))
    return PrimitiveSuccess(
        episodes=episodes,
        successes=outcomes.count("success"),
        falls=outcomes.count("fall"),
        collisions=outcomes.count("collision"),
        timeouts=outcomes.count("timeout"),
        mean_length=float(np.mean(lengths)),
        mean_final_x=float(np.nanmean(final_x)) if not np.isnan(final_x).all() else float("nan"),
        lengths=lengths,
    )


def run_success(
    env_id: str, run: str | Path, episodes: int = 30, seed: int = EVAL_SEED, env_kwargs: dict | None = None
) -> PrimitiveSuccess:
    """`primitive_success` of the control run folder `run` (its greedy actor) in `env_id`."""
    env = gym.make(env_id, **(env_kwargs or {}))
    policy = RunPolicy(Path(run), env.observation_space, env.action_space)
    result = primitive_success(env, policy, episodes, seed)
    result.steps_trained = policy.global_step
    env.close()
    return result
