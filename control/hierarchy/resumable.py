"""Training that resumes exactly where it stopped: loop hooks that save the envs' whole state in each checkpoint
(physics, course, random generators, the episode statistics in progress, the reward normaliser's running returns,
the last step's dones) and put it back on resume, so a killed primitive training continues as if it had never
stopped (same episodes, same weights). For envs with `get_env_state` / `set_env_state` (the Walker envs) in a
synchronous vector env or a `SingleEnv`; otherwise the loop's usual fresh reset."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch

from control.envs import SingleEnv
from control.hooks import LoopContext, LoopHooks


def _episode_statistics(env: gym.Env) -> gym.wrappers.RecordEpisodeStatistics | None:
    while isinstance(env, gym.Wrapper):
        if isinstance(env, gym.wrappers.RecordEpisodeStatistics):
            return env
        env = env.env
    return None


def plain(obj: Any) -> Any:
    """`obj` with numpy arrays as tensors and numpy scalars as Python numbers: what a checkpoint loaded with
    `torch.load(weights_only=True)` can hold."""
    if isinstance(obj, np.ndarray):
        return torch.from_numpy(obj.copy())
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, dict):
        return {k: plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(plain(v) for v in obj)
    return obj


def arrays(obj: Any) -> Any:
    """The inverse of :func:`plain` for arrays: tensors back to numpy."""
    if isinstance(obj, torch.Tensor):
        return obj.numpy()
    if isinstance(obj, dict):
        return {k: arrays(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(arrays(v) for v in obj)
    return obj


class ResumableEnvs(LoopHooks):
    """Checkpoint and restore the envs of the shared loop (see the module docstring)."""

    def __init__(self):
        self.last_done: np.ndarray | None = None
        self.saved: dict[str, Any] = {}

    def setup(self, ctx: LoopContext) -> None:
        self.ctx = ctx
        subs = getattr(ctx.envs, "envs", None)
        if subs is None and isinstance(ctx.envs, SingleEnv):  # one env runs without SyncVectorEnv
            subs = [ctx.envs.env]
        self.subs = (
            subs if subs is not None and all(hasattr(e.unwrapped, "get_env_state") for e in subs) else None
        )
        self.last_done = np.zeros(ctx.cfg.num_envs, np.float32)

    def observe(self, reward: np.ndarray, done: np.ndarray) -> dict[str, np.ndarray]:
        self.last_done = np.asarray(done, np.float32).copy()
        return {}

    def state_dict(self) -> dict[str, Any]:
        if self.subs is None:
            return {}
        envs = []
        for env in self.subs:
            stats = _episode_statistics(env)
            envs.append(
                {
                    "env": env.unwrapped.get_env_state(),
                    "episode": None if stats is None else (stats.episode_returns, stats.episode_lengths),
                }
            )
        norm = self.ctx.norm
        return plain(
            {
                "envs": envs,
                "last_done": self.last_done,
                "norm_returns": None if norm is None else norm.returns,
            }
        )

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.saved = arrays(state or {})

    def restore_envs(self) -> tuple[np.ndarray, np.ndarray] | None:
        if self.subs is None or not self.saved.get("envs") or len(self.saved["envs"]) != len(self.subs):
            return None
        self.ctx.envs.reset(seed=self.ctx.cfg.seed)  # the envs must have been reset before they step
        raw = []
        for env, saved in zip(self.subs, self.saved["envs"], strict=True):
            raw.append(env.unwrapped.set_env_state(saved["env"]))
            stats = _episode_statistics(env)
            if stats is not None and saved["episode"] is not None:
                stats.episode_returns, stats.episode_lengths = saved["episode"]
        if self.ctx.norm is not None and self.saved.get("norm_returns") is not None:
            self.ctx.norm.returns = np.array(self.saved["norm_returns"])
        self.last_done = np.array(self.saved["last_done"], np.float32)
        return np.stack(raw), self.last_done.copy()
