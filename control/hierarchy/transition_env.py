"""The environment a transition policy i -> j trains in (registered as `Hierarchy/Transition-v0`): each episode
starts at a saved hand-over state of the task (where primitive i ended and j is expected) and lasts at most
`horizon` steps. Its own reward is 0: the policy's reward is the AIRL term the training hooks add. A fall or a
collision terminates; the horizon, or the task moving on (the subtask got done during the transition), truncates.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from align.checkpoints import UnsafeCheckpoint, allow_pickle, load_data, save_data


def save_snapshots(path: Path, snapshots: list[dict[str, Any]]) -> None:
    """Hand-over snapshots (MuJoCo qpos/qvel, task state) as JSON data, atomically: loading runs no code."""
    save_data(path, snapshots)


def load_snapshots(path: str | Path) -> list[dict[str, Any]]:
    """The snapshots `save_snapshots` wrote. A pickled file of an older version (`.pkl` beside the
    expected `.json`) is refused unless the user opted in to pickle."""
    path = Path(path)
    legacy = path.with_suffix(".pkl")
    if not path.is_file() and legacy.is_file():
        if not allow_pickle():
            raise UnsafeCheckpoint(legacy, "hand-over snapshots pickled by an older version")
        with legacy.open("rb") as f:
            return pickle.load(f)  # the user opted in: a file they trust
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no hand-over snapshots (run the 'transitions' stage's collection)")
    return load_data(path)


class TransitionEnv(gym.Env):
    """`task_id` (+ `task_kwargs`) restarted from the snapshots in `starts`; `target` is primitive j."""

    metadata = {"render_modes": []}

    def __init__(
        self, task_id: str, starts: str, target: str, horizon: int = 100, task_kwargs: dict | None = None
    ):
        self.task = gym.make(task_id, **(task_kwargs or {}))
        self.snapshots = load_snapshots(starts)
        if not self.snapshots:
            raise ValueError(f"{starts}: holds no hand-over snapshot")
        self.target, self.horizon = target, horizon
        self.observation_space, self.action_space = self.task.observation_space, self.task.action_space
        self.t = 0

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        snapshot = self.snapshots[int(self.np_random.integers(len(self.snapshots)))]
        _, info = self.task.reset(seed=int(self.np_random.integers(2**31)))
        self.t = 0
        return self.task.unwrapped.set_snapshot(snapshot), {**info, "primitive": self.target}

    def step(self, action: np.ndarray):
        obs, _, terminated, truncated, info = self.task.step(action)
        self.t += 1
        moved_on = info["primitive"] != self.target
        if terminated and info.get("success"):  # the task finished during the transition: not a failure
            terminated, truncated = False, True
        truncated = bool(truncated or moved_on or self.t >= self.horizon) and not terminated
        return obs, 0.0, bool(terminated), truncated, info

    def close(self) -> None:
        self.task.close()
