"""How much the moment of a hand-over can matter. From each hand-over snapshot of a pair, a policy (the pair's
transition policy, or the primitive before the hand-over) runs k steps before the next primitive takes over; the
table holds the next subtask's outcome per snapshot and delay k.

The best single delay is the most a fixed hand-over rule can reach from these snapshots; each snapshot's best
delay is the most a switch choosing the moment per hand-over could reach (an upper bound on any learnt switch,
which sees only the state). `flips_per_snapshot` counts how often the outcome changes between neighbouring
delays: a switch can learn a window of good delays (two flips), not an outcome that flips from one delay to the
next. With `repeats` > 1 each cell is run again with other reset seeds, to tell the env's own randomness from
the hand-over state's."""

from __future__ import annotations

from typing import Any

import numpy as np

from control.hierarchy.controller import SwitchEnv, SwitchPolicy


def check_delays(delays: list[int], horizon: int) -> None:
    """Delays must lie in [0, horizon]: at the horizon the hand-over is forced."""
    if any(k < 0 or k > horizon for k in delays):
        raise ValueError(f"delays must lie in [0, {horizon}] (the transition horizon): {delays}")


def delayed_outcome(switch_env: SwitchEnv, snapshot: dict[str, Any], seed: int, delay: int) -> bool:
    """Whether the next subtask succeeds when the hand-over comes `delay` steps after `snapshot`."""
    switch_env.start(snapshot, seed)
    for t in range(delay + 1):
        _, reward, done = switch_env.step(int(t >= delay))
        if done:
            return reward > 0
    raise AssertionError("the switch env did not end at the hand-over")  # step(1) always ends it


def switch_outcomes(
    switch_env: SwitchEnv, snapshots: list[dict[str, Any]], switch: SwitchPolicy, seed: int = 0
) -> list[tuple[bool, int]]:
    """A trained switch deciding from each snapshot (reset seed `seed + i`, as the table's first repeat): the
    next subtask's outcome and the step at which it handed over (or the episode ended)."""
    rows = []
    for i, snapshot in enumerate(snapshots):
        obs, done = switch_env.start(snapshot, seed + i), False
        while not done:  # the env forces the hand-over at its horizon
            obs, reward, done = switch_env.step(int(switch.wants_switch(obs, switch_env.t)))
        rows.append((reward > 0, switch_env.t))
    return rows


def delay_outcomes(
    switch_env: SwitchEnv,
    snapshots: list[dict[str, Any]],
    delays: list[int],
    seed: int = 0,
    repeats: int = 1,
    on_row: Any = None,
) -> np.ndarray:
    """(snapshots, delays, repeats) booleans; snapshot i, repeat r resets the env with seed `seed + i + r *
    len(snapshots)` (every delay of a cell on the same seed). `on_row(i)` is called after each snapshot."""
    check_delays(delays, switch_env.horizon)
    table = np.zeros((len(snapshots), len(delays), repeats), dtype=bool)
    for i, snapshot in enumerate(snapshots):
        for r in range(repeats):
            for j, k in enumerate(delays):
                table[i, j, r] = delayed_outcome(switch_env, snapshot, seed + i + r * len(snapshots), k)
        if on_row is not None:
            on_row(i)
    return table


def delay_summary(table: np.ndarray, delays: list[int]) -> dict[str, Any]:
    """The success share per delay (first repeat), the best single delay, each snapshot's best delay, the
    outcome's changes between neighbouring delays, and (with repeats) the share of cells whose repeats agree."""
    table = np.asarray(table, dtype=bool)
    if table.ndim == 2:
        table = table[:, :, None]
    first = table[:, :, 0]
    n = len(first)
    by_delay = first.mean(0) if n else np.zeros(len(delays))
    best = int(np.argmax(by_delay))
    summary: dict[str, Any] = {
        "snapshots": n,
        "success_by_delay": {str(k): float(s) for k, s in zip(delays, by_delay, strict=True)},
        "best_fixed_delay": delays[best],
        "best_fixed_success": float(by_delay[best]),
        "success_at_each_best_delay": float(first.any(1).mean()) if n else 0.0,
        "flips_per_snapshot": float(np.abs(np.diff(first.astype(int), axis=1)).sum(1).mean()) if n else 0.0,
    }
    if table.shape[2] > 1:
        agree = (table == table[:, :, :1]).all(2)
        summary["repeats"] = table.shape[2]
        summary["same_outcome_share"] = float(agree.mean()) if n else 1.0
    return summary
