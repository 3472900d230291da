"""Executing a composed task: primitives chained in the order the task asks for (`info["primitive"]`), with or
without transition policies between them, and the hand-over rules of the three evaluated policies:

- `"none"`: switch to the next primitive at once (no transition);
- `"fixed"`: run the transition policy for a fixed number of steps, then switch;
- `"dqn"`: run the transition policy until the Double-DQN switch says "switch" (or its horizon ends).

and, to collect hand-over snapshots while the switches train one pair after another, `"trained"`: the DQN switch
where the pair has one, the fixed rule elsewhere.

Also the pieces the training stages need from it: hand-over snapshots (where primitive i ends and j is
expected: the transition policies' start states), and the outcome of a hand-over (did primitive j then complete
its subtask: the switch's +1 / -1 reward).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np

from align.progress import Progress
from control.hierarchy.policies import Policy

Pair = tuple[str, str]
MODES = ("none", "fixed", "dqn")  # the evaluated hand-over policies
RUN_MODES = (*MODES, "trained")  # what `run_episode` runs


class SwitchPolicy:
    """Greedy use of a trained switch: `wants_switch(obs, t)`."""

    def __init__(self, q_values: Callable[[np.ndarray, int], np.ndarray]):
        self.q_values = q_values

    def wants_switch(self, obs: np.ndarray, t: int) -> bool:
        return bool(np.argmax(self.q_values(obs, t)) == 1)


@dataclass
class Composition:
    """What executes a task: primitives by name; transition policies and switches by (from, to) pair."""

    primitives: dict[str, Policy]
    transitions: dict[Pair, Policy] = field(default_factory=dict)
    switches: dict[Pair, SwitchPolicy] = field(default_factory=dict)
    horizon: int = 100  # most steps a transition policy runs before the hand-over is forced
    fixed_steps: int = 20  # the fixed rule's hand-over step


@dataclass
class EpisodeResult:
    subtasks: int
    steps: int
    transition_steps: int
    handovers: int


def subtask_over(info: dict[str, Any], primitive: str, subtasks: int) -> bool:
    """Whether the part of the task `primitive` was running (begun with `subtasks` completed) is over: the task
    asks for another primitive, or it counted a subtask (repetitive tasks then ask for the same one again)."""
    return info["primitive"] != primitive or int(info["subtasks"]) > subtasks


def run_episode(
    env: gym.Env,
    composition: Composition,
    mode: str,
    seed: int,
    max_steps: int = 20_000,
    on_handover: Callable[[Pair, gym.Env], None] | None = None,
) -> EpisodeResult:
    """One episode of the composed task; `on_handover(pair, env)` sees the env at each hand-over (before any
    transition step), e.g. to save snapshots."""
    if mode not in RUN_MODES:
        raise ValueError(f"unknown hand-over mode {mode!r}: expected one of {RUN_MODES}")
    obs, info = env.reset(seed=seed)
    current, phase_pair, t_trans = info["primitive"], None, 0
    begun = int(info["subtasks"])  # subtasks completed when the current primitive (or transition) began
    steps = trans_steps = handovers = 0
    while steps < max_steps:
        expected = info["primitive"]
        if phase_pair is not None and subtask_over(info, phase_pair[1], begun):  # done during the transition
            current, phase_pair = phase_pair[1], None
        if phase_pair is None and subtask_over(info, current, begun):
            pair, handovers = (current, expected), handovers + 1
            begun = int(info["subtasks"])
            if on_handover is not None:
                on_handover(pair, env)
            if mode == "none" or pair not in composition.transitions:
                current = expected
            else:
                phase_pair, t_trans = pair, 0
        if phase_pair is not None and _hand_over(composition, mode, phase_pair, obs, t_trans):
            current, phase_pair = phase_pair[1], None
        if phase_pair is not None:
            action = composition.transitions[phase_pair].act(obs)
            t_trans, trans_steps = t_trans + 1, trans_steps + 1
        else:
            action = composition.primitives[current].act(obs)
        obs, _, terminated, truncated, info = env.step(action)
        steps += 1
        if terminated or truncated:
            break
    return EpisodeResult(int(info["subtasks"]), steps, trans_steps, handovers)


def _hand_over(composition: Composition, mode: str, pair: Pair, obs: np.ndarray, t: int) -> bool:
    if t >= composition.horizon:
        return True
    if mode == "fixed" or (mode == "trained" and pair not in composition.switches):
        return t >= composition.fixed_steps
    return composition.switches[pair].wants_switch(obs, t)


def primitive_outcome(
    env: gym.Env, policy: Policy, obs: np.ndarray, primitive: str, subtasks: int, max_steps: int = 5_000
) -> tuple[float, int]:
    """Run `primitive` from `obs` until its part of the task is over: +1 if it ended well (the task moved on to
    another primitive, or finished), -1 if the episode failed or timed out. Returns (outcome, steps)."""
    for steps in range(1, max_steps + 1):
        obs, _, terminated, truncated, info = env.step(policy.act(obs))
        if terminated or truncated:
            finished = terminated and info["success"] and info["subtasks"] > subtasks
            return (1.0 if finished else -1.0), steps
        if subtask_over(info, primitive, subtasks):
            return 1.0, steps
    return -1.0, max_steps


class SwitchEnv:
    """The switch's decision problem for one pair i -> j: start at a hand-over snapshot; each decision either
    keeps the transition policy for one more step (reward 0) or switches to primitive j, whose subtask then
    succeeds (+1) or fails (-1) and ends the episode. A fall during the transition is -1; the subtask ending
    during the transition (the task asks for another primitive) is +1; at `horizon` the switch is forced."""

    def __init__(
        self,
        env: gym.Env,
        pair: Pair,
        transition: Policy,
        primitive: Policy,
        starts: list[dict[str, Any]],
        horizon: int,
    ):
        if not starts:
            raise ValueError(f"no hand-over snapshots for {pair[0]} -> {pair[1]}: collect them first")
        self.env, self.pair, self.transition, self.primitive = env, pair, transition, primitive
        self.starts, self.horizon = starts, horizon
        self.env_steps = 0

    def reset(self, rng: np.random.Generator) -> np.ndarray:
        snapshot = self.starts[int(rng.integers(len(self.starts)))]
        return self.start(snapshot, int(rng.integers(2**31)))

    def start(self, snapshot: dict[str, Any], seed: int) -> np.ndarray:
        """Begin a decision episode at `snapshot` (the env reset with `seed` first)."""
        self.env.reset(seed=seed)
        self.obs = self.env.unwrapped.set_snapshot(snapshot)
        self.t, self.subtasks = 0, int(snapshot.get("successes", 0))
        return self.obs

    def step(self, switch: int) -> tuple[np.ndarray, float, bool]:
        if switch or self.t >= self.horizon:
            outcome, steps = primitive_outcome(
                self.env, self.primitive, self.obs, self.pair[1], self.subtasks
            )
            self.env_steps += steps
            return self.obs, outcome, True
        self.obs, _, terminated, truncated, info = self.env.step(self.transition.act(self.obs))
        self.t, self.env_steps = self.t + 1, self.env_steps + 1
        if terminated or truncated:
            finished = terminated and info["success"] and info["subtasks"] > self.subtasks
            return self.obs, (1.0 if finished else -1.0), True
        if subtask_over(info, self.pair[1], self.subtasks):
            return self.obs, 1.0, True
        return self.obs, 0.0, False


def collect_handover_snapshots(
    env: gym.Env,
    composition: Composition,
    pairs: list[Pair],
    per_pair: int,
    seed: int,
    max_episodes: int = 1_000,
    mode: str = "none",
) -> dict[Pair, list[dict[str, Any]]]:
    """Run the task (by default switching at once) and save the env's snapshot at each hand-over of `pairs`,
    until each pair has `per_pair` of them or `max_episodes` have run."""
    found: dict[Pair, list[dict[str, Any]]] = {p: [] for p in pairs}

    def keep(pair: Pair, task_env: gym.Env) -> None:
        if pair in found and len(found[pair]) < per_pair:
            found[pair].append(task_env.unwrapped.get_snapshot())

    wanted = per_pair * len(pairs)
    with Progress(wanted, "hand-over starts", unit="start") as bar:  # ends early if max_episodes run out
        for episode in range(max_episodes):
            if all(len(v) >= per_pair for v in found.values()):
                break
            before = sum(len(v) for v in found.values())
            run_episode(env, composition, mode, seed + episode, on_handover=keep)
            bar.update(sum(len(v) for v in found.values()) - before, episodes=episode + 1)
    return found


def collect_initiation_set(
    env: gym.Env, policy: Policy, episodes: int, portion: float, seed: int, max_steps: int = 2_000
) -> dict[str, np.ndarray]:
    """The primitive's own (s, a, s', terminal) over the first `portion` of each successful episode in its own
    env: the states it expects to start from (Lee et al.'s initiation set), the AIRL 'expert' data. If no
    episode succeeds, every episode's first part is used (`episodes_kept` 0 records it)."""
    successful: list[list[tuple[np.ndarray, np.ndarray, np.ndarray, float]]] = []
    everything: list[list[tuple[np.ndarray, np.ndarray, np.ndarray, float]]] = []
    for episode in range(episodes):
        obs, _ = env.reset(seed=seed + episode)
        trajectory = []
        for _ in range(max_steps):
            action = policy.act(obs)
            nxt, _, terminated, truncated, info = env.step(action)
            trajectory.append((obs, action, nxt, float(terminated)))
            obs = nxt
            if terminated or truncated:
                break
        head = trajectory[: max(1, int(round(portion * len(trajectory))))]
        everything.append(head)
        if info.get("success"):
            successful.append(head)
    # a primitive that never succeeds still has starts: then every episode's are kept (and the file says so)
    rows = [row for head in (successful or everything) for row in head]
    obs, actions, nxt, terminal = (np.asarray(x) for x in zip(*rows, strict=True))
    return {
        "obs": obs.astype(np.float32),
        "actions": actions.astype(np.float32),
        "next_obs": nxt.astype(np.float32),
        "terminal": terminal.astype(np.float32),
        "episodes_kept": np.asarray(len(successful)),
        "episodes_used": np.asarray(len(successful) or len(everything)),
    }
