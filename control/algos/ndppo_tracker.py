"""Episode bookkeeping for the normality-guided critic: step-in-episode counters and recent-return statistics.

The std schedule of :func:`control.losses.distributional.return_std_schedule` needs, per transition, the step
index ``t`` within its episode, and, per update, the variance ``sigma_0^2`` of recent episode returns and their
mean length ``L`` (the paper uses the last 50 episodes).
"""

from __future__ import annotations

from collections import deque

import numpy as np
import torch

from control.losses.distributional import return_std_schedule

__all__ = ["EpisodeClock"]


class EpisodeClock:
    """Counts steps and accumulates (possibly shaped) rewards per vector-env slot; keeps the last episodes."""

    def __init__(self, num_envs: int, window: int = 50, min_std: float = 1.0) -> None:
        if window < 2:
            raise ValueError(f"normality window must be >= 2 episodes, got {window}")
        self.steps = np.zeros(num_envs, dtype=np.int64)
        self.running_return = np.zeros(num_envs, dtype=np.float64)
        self.returns: deque[float] = deque(maxlen=window)
        self.lengths: deque[int] = deque(maxlen=window)
        self.min_std = min_std

    def observe(self, rewards: np.ndarray, done: np.ndarray) -> np.ndarray:
        """Record one vector step; return the step-in-episode index each transition was taken at."""
        taken_at = self.steps.copy()
        self.steps += 1
        self.running_return += rewards
        for i in np.flatnonzero(done):
            self.returns.append(float(self.running_return[i]))
            self.lengths.append(int(self.steps[i]))
            self.steps[i] = 0
            self.running_return[i] = 0.0
        return taken_at

    @property
    def ready(self) -> bool:
        """Whether enough episodes have ended to estimate ``sigma_0^2`` (until then the floor is used)."""
        return len(self.returns) >= 2

    def initial_variance(self) -> float:
        return float(np.var(self.returns)) if self.ready else self.min_std**2

    def mean_length(self) -> float:
        return float(np.mean(self.lengths)) if self.lengths else float(max(self.steps.max(), 1))

    def std(self, step_in_episode: torch.Tensor) -> torch.Tensor:
        """``sigma_t`` for the given step indices (paper's schedule, current statistics)."""
        return return_std_schedule(step_in_episode, self.initial_variance(), self.min_std, self.mean_length())

    def state_dict(self) -> dict:
        return {
            "steps": self.steps.tolist(),
            "running_return": self.running_return.tolist(),
            "returns": list(self.returns),
            "lengths": list(self.lengths),
        }

    def load_state_dict(self, state: dict) -> None:
        self.steps = np.asarray(state["steps"], dtype=np.int64)
        self.running_return = np.asarray(state["running_return"], dtype=np.float64)
        self.returns.clear()
        self.returns.extend(state["returns"])
        self.lengths.clear()
        self.lengths.extend(state["lengths"])
