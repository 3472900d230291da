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

from control.hierarchy.controller import subtask_over


def save_snapshots(path: Path, snapshots: list[dict[str, Any]]) -> None:
    tmp = path.with_suffix(".tmp")
    with tmp.open("wb") as f:
        pickle.dump(snapshots, f)
    tmp.replace(path)


def load_snapshots(path: str | Path) -> list[dict[str, Any]]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no hand-over snapshots (run the 'transitions' stage's collection)")
    with path.open("rb") as f:
        return pickle.load(f)  # our own files, written by save_snapshots


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
        self.t, self.subtasks = 0, int(snapshot.get("successes", 0))
        return self.task.unwrapped.set_snapshot(snapshot), {**info, "primitive": self.target}

    def step(self, action: np.ndarray):
        obs, _, terminated, truncated, info = self.task.step(action)
        self.t += 1
        moved_on = subtask_over(info, self.target, self.subtasks)
        if terminated and info.get("success"):  # the task finished during the transition: not a failure
            terminated, truncated = False, True
        truncated = bool(truncated or moved_on or self.t >= self.horizon) and not terminated
        return obs, 0.0, bool(terminated), truncated, info

    def close(self) -> None:
        self.task.close()
