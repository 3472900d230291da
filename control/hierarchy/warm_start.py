"""Starting a primitive's PPO from another primitive's weights (ours, not the authors': a curriculum that our
budget needs). The Jump primitive must first learn to run, and every episode of its own env ends at the curb until
it can jump; started from the trained Forward primitive it runs from the first step and only has to learn the
jump.

The new run's checkpoint (global step 0) holds the source's actor-critic and optimiser; inputs the source never
saw vary (the obstacle features, constant while walking on open ground) get zero weights, so the new policy
starts as exactly the source's, and their normalisation statistics are measured in the new env with the
source's greedy policy. Training then resumes from that checkpoint like any run."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

from control.config import TrainConfig
from control.hierarchy.policies import RunPolicy
from control.run import load_checkpoint, rng_state, save_checkpoint

# an input with a running variance below this (x max(1, mean^2)) never varied for the source
CONSTANT_VAR = 1e-4


def measured_obs_stats(
    env_id: str, env_kwargs: dict, policy: RunPolicy, steps: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance of the raw observations of `steps` steps of `env_id` under `policy` (greedy)."""
    env = gym.make(env_id, **env_kwargs)
    obs, _ = env.reset(seed=seed)
    seen = []
    for _ in range(steps):
        seen.append(obs)
        obs, _, terminated, truncated, _ = env.step(policy.act(obs))
        if terminated or truncated:
            obs, _ = env.reset()
    env.close()
    seen = np.asarray(seen)
    return seen.mean(0), seen.var(0)


def warm_start(source: Path, target: TrainConfig, measure_steps: int = 5_000) -> list[int]:
    """Write `target.out_dir`/checkpoint.pt at step 0 from the run folder `source` (same observation and action
    spaces, same hidden sizes). Returns the inputs that were new to the source (zeroed, re-measured)."""
    state = load_checkpoint(Path(source) / "checkpoint.pt")
    agent = {k: v.clone() for k, v in state["agent"].items()}
    norm = {k: np.array(v, copy=True) if isinstance(v, np.ndarray) else v for k, v in state["norm"].items()}
    scale = np.maximum(1.0, np.square(norm["obs_mean"]))
    new_inputs = [int(i) for i in np.flatnonzero(np.asarray(norm["obs_var"]) < CONSTANT_VAR * scale)]
    for name in ("actor.0.weight", "critic.0.weight"):
        agent[name][:, new_inputs] = 0.0
    env = gym.make(target.env_id, **target.env_kwargs)
    policy = RunPolicy(Path(source), env.observation_space, env.action_space)
    env.close()
    mean, var = measured_obs_stats(target.env_id, target.env_kwargs, policy, measure_steps, target.seed)
    norm["obs_mean"][new_inputs] = mean[new_inputs]
    norm["obs_var"][new_inputs] = np.maximum(var[new_inputs], 1e-4)
    out = Path(target.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(target.seed)
    np.random.seed(target.seed)
    save_checkpoint(
        out / "checkpoint.pt",
        {
            "agent": agent,
            "critic": None,
            "optimizer": state["optimizer"],
            "global_step": 0,
            "iteration": 0,
            "norm": norm,
            **rng_state(),
            "hooks": {},
            "config": dataclasses.asdict(target),
            "warm_start": {
                "source": str(source),
                "source_step": int(state["global_step"]),
                "new_inputs": new_inputs,
            },
        },
    )
    return new_inputs
