"""Starting a primitive's PPO from another primitive's weights (ours, not the authors': a curriculum that our
budget needs). The Jump primitive must first learn to run, and every episode of its own env ends at the curb until
it can jump; started from the trained Forward primitive it runs from the first step and only has to learn the
jump.

The new run's checkpoint (global step 0) holds the source's actor-critic and optimiser; inputs the source never
saw vary (the obstacle features, constant while walking on open ground) get zero weights, so the new policy
starts as exactly the source's, and their normalisation statistics are measured in the new env with the
source's greedy policy. A target observation longer than the source's (extra inputs appended, e.g. the Walker's
`feet_features`) gets zero weights (and zero Adam moments) for the appended inputs too. Training then resumes from
that checkpoint like any run."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from control.config import TrainConfig
from control.hierarchy.policies import RunPolicy
from control.run import load_checkpoint, rng_state, save_checkpoint

# an input with a running variance below this (x max(1, mean^2)) never varied for the source
CONSTANT_VAR = 1e-4
# the actor's and critic's input layers: where observation inputs have their weights
FIRST_LAYERS = ("actor.0.weight", "critic.0.weight")


def measured_obs_stats(
    env_id: str, env_kwargs: dict, policy: RunPolicy, steps: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance of the raw observations of `steps` steps of `env_id` under `policy` (greedy; it sees the
    observation's first inputs, as many as it was trained on)."""
    env = gym.make(env_id, **env_kwargs)
    obs, _ = env.reset(seed=seed)
    seen = []
    for _ in range(steps):
        seen.append(obs)
        obs, _, terminated, truncated, _ = env.step(policy.act(obs[: policy.obs_dim]))
        if terminated or truncated:
            obs, _ = env.reset()
    env.close()
    seen = np.asarray(seen)
    return seen.mean(0), seen.var(0)


def _pad_inputs(tensor: torch.Tensor, extra: int) -> torch.Tensor:
    """A first layer's weights (or their Adam moments) with `extra` zero input columns appended."""
    return torch.cat([tensor, tensor.new_zeros(tensor.shape[0], extra)], dim=1)


def _padded_optimizer(optimizer: dict[str, Any], shapes: set[tuple[int, ...]], extra: int) -> dict[str, Any]:
    """An Adam state dict whose moments of the parameters shaped like a first layer (`shapes`) are padded."""
    state = {}
    for key, entry in optimizer["state"].items():
        entry = dict(entry)
        for name in ("exp_avg", "exp_avg_sq"):
            if tuple(entry[name].shape) in shapes:
                entry[name] = _pad_inputs(entry[name], extra)
        state[key] = entry
    return {**optimizer, "state": state}


def warm_start(source: Path, target: TrainConfig, measure_steps: int = 5_000) -> list[int]:
    """Write `target.out_dir`/checkpoint.pt at step 0 from the run folder `source` (the same action space and
    hidden sizes; the target's observation is the source's, or the source's with inputs appended). Returns the
    inputs that were new to the source (zeroed, re-measured)."""
    state = load_checkpoint(Path(source) / "checkpoint.pt")
    agent = {k: v.clone() for k, v in state["agent"].items()}
    norm = {k: np.array(v, copy=True) if isinstance(v, np.ndarray) else v for k, v in state["norm"].items()}
    env = gym.make(target.env_id, **target.env_kwargs)
    obs_space, action_space = env.observation_space, env.action_space
    env.close()
    source_dim, target_dim = agent[FIRST_LAYERS[0]].shape[1], int(np.prod(obs_space.shape))
    if target_dim < source_dim:
        raise ValueError(
            f"{source}: observations of {source_dim} inputs, the target's have only {target_dim}"
        )
    extra = target_dim - source_dim
    optimizer = state["optimizer"]
    if extra:
        optimizer = _padded_optimizer(optimizer, {tuple(agent[n].shape) for n in FIRST_LAYERS}, extra)
        for name in FIRST_LAYERS:
            agent[name] = _pad_inputs(agent[name], extra)
        norm["obs_mean"] = np.concatenate([norm["obs_mean"], np.zeros(extra)])
        norm["obs_var"] = np.concatenate([norm["obs_var"], np.ones(extra)])
    scale = np.maximum(1.0, np.square(norm["obs_mean"][:source_dim]))
    constant = np.asarray(norm["obs_var"][:source_dim]) < CONSTANT_VAR * scale
    new_inputs = [int(i) for i in np.flatnonzero(constant)] + list(range(source_dim, target_dim))
    for name in FIRST_LAYERS:
        agent[name][:, new_inputs] = 0.0
    source_obs = gym.spaces.Box(-np.inf, np.inf, (source_dim,), np.float64)
    policy = RunPolicy(Path(source), source_obs, action_space)
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
            "optimizer": optimizer,
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
