"""Evaluate a saved run again: rebuild its agent from `config.json` + `checkpoint.pt` and play noiseless episodes
(`python -m control evaluate RUN...`), e.g. with more episodes or sampled instead of greedy actions."""

from __future__ import annotations

import dataclasses
import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from align.user_errors import UserError
from control.config import TrainConfig
from control.device import native_bf16
from control.envs import VecNormalize, make_env
from control.networks import ActorCritic
from control.run import EVAL_SEED_OFFSET, evaluate, load_checkpoint


def load_run_config(run: Path) -> TrainConfig:
    """The run's TrainConfig (fields a trainer added to config.json, such as ND-PPO's settings, are left out)."""
    path = run / "config.json"
    if not path.is_file():
        raise UserError(f"{run}: not a control run folder (no config.json)")
    raw = json.loads(path.read_text())
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    values = {k: v for k, v in raw.items() if k in names}
    if "hidden" in values:  # JSON stores the tuple as a list
        values["hidden"] = tuple(values["hidden"])
    return TrainConfig(**values)


def load_agent(run: Path, cfg: TrainConfig) -> tuple[ActorCritic, VecNormalize | None, int]:
    """(agent on the CPU, the checkpoint's normalisation statistics or None, the checkpoint's step)."""
    path = run / "checkpoint.pt"
    if not path.is_file():
        raise UserError(f"{path}: the run has no checkpoint to evaluate (has it saved one yet?)")
    state = load_checkpoint(path)
    env = make_env(cfg.env_config(), cfg.seed, evaluation=True)()
    bf16 = cfg.bf16
    if bf16 and not (native := native_bf16(torch.device("cpu")))[0]:
        warnings.warn(
            f"{run}: evaluating in float32 instead of bf16: {native[1]}", RuntimeWarning, stacklevel=2
        )
        bf16 = False
    agent = ActorCritic(env.observation_space, env.action_space, tuple(cfg.hidden), bf16)
    env.close()
    weights = state["agent"]
    if any(k.startswith("quantile_critic.") for k in weights):  # ND-PPO: the actor's part of its agent
        weights = {k[len("actor.") :]: v for k, v in weights.items() if k.startswith("actor.")}
    agent.load_state_dict(weights)
    norm = None
    if state.get("norm"):
        norm = VecNormalize(env.observation_space.shape, 1, cfg.gamma)
        norm.load_state_dict(state["norm"])  # evaluate() only reads it (apply_obs)
    return agent, norm, int(state["global_step"])


def evaluate_run(
    run: Path, episodes: int | None = None, greedy: bool | None = None, seed: int | None = None
) -> dict[str, Any]:
    """Evaluate a run's checkpoint; defaults: the run's episode count, action choice and evaluation seed (the
    same episodes as its own final evaluation)."""
    cfg = load_run_config(run)
    if greedy is not None:
        cfg = dataclasses.replace(cfg, eval_greedy=greedy)
    agent, norm, step = load_agent(run, cfg)
    n = episodes or cfg.eval_episodes or 10
    returns = evaluate(agent, cfg, norm, n, cfg.seed + EVAL_SEED_OFFSET if seed is None else seed)
    return {
        "run": str(run),
        "global_step": step,
        "greedy": cfg.evaluates_greedily(),
        "episodes": n,
        "mean_return": float(np.mean(returns)),
        "std_return": float(np.std(returns)),
        "returns": returns,
    }
