"""A small, fast hierarchical task for tests: a point on a line with bounded acceleration.

- `PointDash`: from rest, reach 1 unit ahead (success ends the episode; a full-throttle dash arrives at ~2 u/s).
- `PointPark`: from near rest, stop (|v| < 0.1) within 0.1 of the spot 0.5 ahead.
- `PointDashPark`: dash, park, dash, park, ... (`max_subtasks`, default 4); each segment's observation is
  relative to where it starts, so a primitive sees its own frame.

A dash ends at ~2 u/s, and stopping from there takes 1 unit: parking 0.5 ahead straight away overshoots, so
switching at once fails. A transition policy that brakes and comes back to where a park starts (at rest, 0 ahead)
lets the park succeed. Observation: (position relative to the segment's start, velocity). Leaving [-1, 2.5] of
the segment, or `subtask_steps` steps without success, fails.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

DT, ACCEL = 0.1, 2.0
DASH_LENGTH, PARK_SPOT = 1.0, 0.5
PARK_TOLERANCE, STOP_SPEED = 0.1, 0.1
BOUNDS = (-1.0, 2.5)
BODY_DIM = 2


class PointLine(gym.Env):
    """Base: state (x, v) in world coordinates, a sequence of segments each with its primitive."""

    metadata = {"render_modes": []}
    primitive: str | None = None

    def __init__(self, max_subtasks: int = 1, subtask_steps: int = 40):
        self.observation_space = gym.spaces.Box(-10.0, 10.0, (2,), np.float64)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
        self.max_subtasks, self.subtask_steps = max_subtasks, subtask_steps
        self.x = self.v = self.origin = 0.0
        self.successes = self.steps_in_subtask = 0

    def segment(self) -> str:
        """The primitive of the current segment (the one the task expects)."""
        return self.primitive

    def _obs(self) -> np.ndarray:
        return np.array([self.x - self.origin, self.v])

    def _start(self) -> None:
        self.x, self.v = self.np_random.uniform(-0.05, 0.05), self.np_random.uniform(-0.05, 0.05)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.origin, self.successes, self.steps_in_subtask = 0.0, 0, 0
        self._start()
        return self._obs(), {"success": False, "subtasks": 0, "primitive": self.segment()}

    def _segment_done(self, kind: str, rel: float) -> bool:
        if kind == "dash":
            return rel >= DASH_LENGTH
        return abs(rel - PARK_SPOT) < PARK_TOLERANCE and abs(self.v) < STOP_SPEED

    def step(self, action: np.ndarray):
        kind = self.segment()
        before = self.x - self.origin
        a = float(np.clip(np.asarray(action).reshape(-1)[0], -1.0, 1.0))
        self.v = float(np.clip(self.v + ACCEL * a * DT, -3.0, 3.0))
        self.x += self.v * DT
        rel = self.x - self.origin
        if kind == "dash":
            reward = rel - before
        else:
            reward = -0.1 * abs(rel - PARK_SPOT) - 0.05 * abs(self.v)
        success = self._segment_done(kind, rel)
        self.steps_in_subtask += 1
        terminated = not BOUNDS[0] <= rel <= BOUNDS[1]
        if success and not terminated:
            self.successes += 1
            self.steps_in_subtask = 0
            reward += 1.0
            self.origin += DASH_LENGTH if kind == "dash" else PARK_SPOT
        else:
            success = False
        terminated = terminated or self.successes >= self.max_subtasks
        truncated = not terminated and self.steps_in_subtask >= self.subtask_steps
        info = {"success": success, "subtasks": self.successes, "primitive": self.segment()}
        return self._obs(), reward, terminated, truncated, info

    def get_snapshot(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("x", "v", "origin", "successes", "steps_in_subtask")}

    def set_snapshot(self, snapshot: dict[str, Any]) -> np.ndarray:
        for k, value in snapshot.items():
            setattr(self, k, value)
        return self._obs()


class PointDash(PointLine):
    primitive = "dash"


class PointPark(PointLine):
    primitive = "park"


class PointDashPark(PointLine):
    """Dash, park, dash, park, ...: each completed segment is a subtask."""

    def __init__(self, max_subtasks: int = 4, subtask_steps: int = 40):
        super().__init__(max_subtasks, subtask_steps)

    def segment(self) -> str:
        return "dash" if self.successes % 2 == 0 else "park"


def scripted_primitives() -> dict[str, Any]:
    """Hand-written primitives of the toy task: the dash at full throttle; the park a PD law that only knows
    slow states (|v| < 1, where it was 'trained') and outside them pushes forward, as a policy extrapolating
    beyond its initiation set may. Switching at once after a dash (v ~ 2) therefore fails; after braking, the
    park succeeds."""
    from control.hierarchy.policies import ScriptedPolicy

    def park(obs: np.ndarray) -> list[float]:
        rel, v = float(obs[0]), float(obs[1])
        return [float(np.clip(4.0 * (PARK_SPOT - rel) - 3.0 * v, -1.0, 1.0)) if abs(v) < 1.0 else 1.0]

    return {"dash": ScriptedPolicy(lambda obs: [1.0]), "park": ScriptedPolicy(park)}
