"""States recorded from trained primitives running in their own envs: the starts that a primitive's PPO episodes
may begin from (ours: Walker Balance from Forward and Backward, so that it learns to come to a stop from a run, the
states a task hands it; Jaco Hit from the Toss's release, as serve hands it over). Saved as an .npz of `qpos` and
`qvel` rows, which loads without pickle."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np

if TYPE_CHECKING:
    from control.hierarchy.policies import Policy


class NoRunningStates(RuntimeError):
    """The source primitives fell in the run-up of every recorded episode: nothing to start from (a user-facing
    condition: train them longer)."""


SKIP_STEPS = 50  # the run-up: states before this step of an episode are not yet running
EVERY = 4  # keep every 4th step (neighbouring steps are nearly the same state)
FALLING_STEPS = 20  # a falling episode's last steps, left out (already falling)


def record_running_states(
    env: gym.Env, policy: Policy, episodes: int, seed: int, max_steps: int = 400
) -> tuple[np.ndarray, np.ndarray]:
    """`qpos` and `qvel` of `policy`'s greedy episodes in `env` (seeds `seed`, `seed + 1`, ...): every `EVERY`-th
    step from step `SKIP_STEPS` to the episode's end or `max_steps`; a falling episode's last `FALLING_STEPS`
    steps are left out."""
    raw = env.unwrapped
    qpos, qvel = [], []
    for k in range(episodes):
        obs, _ = env.reset(seed=seed + k)
        kept_p, kept_v = [], []
        for t in range(max_steps):
            obs, _, terminated, truncated, _ = env.step(policy.act(obs))
            if terminated:
                drop = FALLING_STEPS // EVERY  # the kept rows of the last FALLING_STEPS steps
                kept_p, kept_v = kept_p[:-drop], kept_v[:-drop]
                break
            if truncated:
                break
            if t >= SKIP_STEPS and t % EVERY == 0:
                kept_p.append(raw.data.qpos.copy())
                kept_v.append(raw.data.qvel.copy())
        qpos += kept_p
        qvel += kept_v
    nq, nv = raw.model.nq, raw.model.nv
    return np.asarray(qpos).reshape(-1, nq), np.asarray(qvel).reshape(-1, nv)


def record_handover_states(
    env: gym.Env, policy: Policy, episodes: int, seed: int, max_steps: int = 400
) -> tuple[np.ndarray, np.ndarray]:
    """`qpos` and `qvel` of `policy`'s greedy episodes in `env` (seeds `seed`, `seed + 1`, ...) at every step where
    the env's `handover_state()` holds, from the episodes whose `handover_kept()` holds when they end (an arm env
    that hands over to another primitive: Toss's rising ball after the release, from tosses that reach the apex)."""
    raw = env.unwrapped
    qpos, qvel = [], []
    for k in range(episodes):
        obs, _ = env.reset(seed=seed + k)
        kept_p, kept_v = [], []
        for _ in range(max_steps):
            obs, _, terminated, truncated, _ = env.step(policy.act(obs))
            if raw.handover_state():
                kept_p.append(raw.data.qpos.copy())
                kept_v.append(raw.data.qvel.copy())
            if terminated or truncated:
                break
        if raw.handover_kept():
            qpos += kept_p
            qvel += kept_v
    nq, nv = raw.model.nq, raw.model.nv
    return np.asarray(qpos).reshape(-1, nq), np.asarray(qvel).reshape(-1, nv)


def check_start_prob(start_prob: Any) -> float:
    """`start_prob` as a float; ValueError naming it unless it is a number in [0, 1]."""
    if (
        isinstance(start_prob, bool)
        or not isinstance(start_prob, int | float)
        or not 0.0 <= start_prob <= 1.0
    ):
        raise ValueError(f"start_prob must be a number in [0, 1], not {start_prob!r}")
    return float(start_prob)


def load_states(path: str | Path, nq: int, nv: int) -> tuple[np.ndarray, np.ndarray]:
    """The `qpos` and `qvel` rows of a states file (no pickle); ValueError naming the file when they do not fit
    a model of `nq` positions and `nv` velocities."""
    with np.load(path, allow_pickle=False) as states:
        qpos, qvel = np.asarray(states["qpos"]), np.asarray(states["qvel"])
    if qpos.ndim != 2 or qpos.shape[1] != nq or qvel.shape != (len(qpos), nv) or not len(qpos):
        raise ValueError(f"{path}: qpos and qvel must be (N, {nq}) and (N, {nv}) arrays, N >= 1")
    return qpos, qvel


def save_states(path: Path, qpos: np.ndarray, qvel: np.ndarray) -> None:
    """Write atomically, so a stopped pipeline never leaves half a file behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez_compressed(tmp, qpos=qpos, qvel=qvel)
    tmp.replace(path)
