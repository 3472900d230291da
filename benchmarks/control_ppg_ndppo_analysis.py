"""Analysis of the PPO / PPG / ND-PPO sweep: per-run metrics from the run folders, tables with 95% t-intervals
over seeds, paired differences (paired by seed), and the return and entropy curves.

Metrics of a run:
- *mean over training*: the training-episode return averaged over the whole budget, as the area under the
  learning curve: the budget is cut into `bins` equal step bins, each bin's value is the mean return of the
  episodes that ended in it (an empty bin repeats the previous one), and the bins are averaged. Equal weight per
  step, not per episode (early Hopper episodes are short and many).
- *final*: the greedy evaluation after training (`summary.json`, `--eval-episodes` episodes on the noiseless env).
- *entropy*: the policy's entropy logged after every update (TensorBoard scalar `losses/entropy`; for the
  Gaussian policies here it is a function of the state-independent log-std, so the value is exact, not a
  minibatch estimate); *final entropy* is the mean of the last 5 logged values.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from seed_stats import Interval, paired_interval, t_interval


@dataclass
class RunResult:
    algo: str
    env_id: str
    seed: int
    total_steps: int
    episode_steps: np.ndarray  # the step at which each training episode ended
    episode_returns: np.ndarray
    final_eval: float
    entropy_steps: np.ndarray = field(default_factory=lambda: np.zeros(0))
    entropy: np.ndarray = field(default_factory=lambda: np.zeros(0))
    steps_per_s: float = float("nan")


def read_episodes(run: Path) -> tuple[np.ndarray, np.ndarray]:
    """(end step, return) of every training episode in a run's episodes.csv."""
    from control.run import read_rows  # the data rows, with or without the header row

    rows = read_rows(run / "episodes.csv")
    return np.array([float(r[0]) for r in rows]), np.array([float(r[1]) for r in rows])


def read_scalar(run: Path, tag: str) -> tuple[np.ndarray, np.ndarray]:
    """(steps, values) of one TensorBoard scalar of a run (a resumed run's repeated steps: the last write)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    by_step: dict[int, float] = {}
    for events in sorted((run / "tb").glob("events.out.tfevents.*"), key=lambda p: p.stat().st_mtime):
        acc = EventAccumulator(str(events), size_guidance={"scalars": 0})
        acc.Reload()
        if tag in acc.Tags().get("scalars", []):
            by_step.update({int(e.step): float(e.value) for e in acc.Scalars(tag)})
    steps = np.array(sorted(by_step), dtype=float)
    return steps, np.array([by_step[int(s)] for s in steps])


def load_run(run: Path, with_entropy: bool = True) -> RunResult:
    """A finished run folder (config.json, summary.json, episodes.csv, tb/)."""
    cfg = json.loads((run / "config.json").read_text())
    summary = json.loads((run / "summary.json").read_text())
    steps, returns = read_episodes(run)
    ent_steps, ent = read_scalar(run, "losses/entropy") if with_entropy else (np.zeros(0), np.zeros(0))
    return RunResult(
        cfg["algo"],
        cfg["env_id"],
        int(cfg["seed"]),
        int(cfg["total_steps"]),
        steps,
        returns,
        float(summary["eval_mean_return"]),
        ent_steps,
        ent,
        float(summary.get("steps_per_s", float("nan"))),
    )


def binned_curve(steps: np.ndarray, returns: np.ndarray, total_steps: int, bins: int = 20) -> np.ndarray:
    """Mean return of the episodes ending in each of `bins` equal step bins of [0, total_steps]; an empty bin
    takes the previous bin's value (the first non-empty one's, at the start)."""
    if len(steps) == 0:
        return np.full(bins, np.nan)
    index = np.minimum((np.asarray(steps) - 1) * bins // total_steps, bins - 1).astype(int)
    sums = np.bincount(index, weights=returns, minlength=bins)[:bins]
    counts = np.bincount(index, minlength=bins)[:bins]
    curve = np.full(bins, np.nan)
    curve[counts > 0] = sums[counts > 0] / counts[counts > 0]
    first = curve[np.flatnonzero(counts)[0]]
    for i in range(bins):
        curve[i] = curve[i] if counts[i] else (curve[i - 1] if i else first)
    return curve


def mean_over_training(run: RunResult, bins: int = 20) -> float:
    return float(binned_curve(run.episode_steps, run.episode_returns, run.total_steps, bins).mean())


def final_entropy(run: RunResult, last: int = 5) -> float:
    return float(np.mean(run.entropy[-last:])) if len(run.entropy) else float("nan")


METRICS = {
    "mean over training": mean_over_training,
    "final eval": lambda r: r.final_eval,
}


def by_seed(runs: list[RunResult], env_id: str, algo: str, metric) -> dict[int, float]:
    return {r.seed: metric(r) for r in runs if r.env_id == env_id and r.algo == algo}


def _names(runs: list[RunResult], attr: str, order: list[str] | None) -> list[str]:
    present = list(dict.fromkeys(getattr(r, attr) for r in runs))
    return [n for n in order if n in present] + [n for n in present if n not in order] if order else present


def returns_table(
    runs: list[RunResult], algos: list[str] | None = None, envs: list[str] | None = None
) -> str:
    """One row per (env, algo): mean over training and final eval, each mean ± 95% t half width over seeds."""
    lines = [
        "| env | algo | seeds | mean over training | final eval (greedy) | steps/s per run |",
        "|---|---|---|---|---|---|",
    ]
    for env in _names(runs, "env_id", envs):
        for algo in _names(runs, "algo", algos):
            cell = [r for r in runs if r.env_id == env and r.algo == algo]
            if not cell:
                continue
            mot = t_interval([mean_over_training(r) for r in cell])
            fin = t_interval([r.final_eval for r in cell])
            sps = np.median([r.steps_per_s for r in cell])
            lines.append(f"| {env} | {algo} | {len(cell)} | {mot.format()} | {fin.format()} | {sps:,.0f} |")
    return "\n".join(lines)


def _diff_cell(interval: Interval) -> str:
    text = interval.format(signed=True)
    return f"**{text}**" if interval.excludes_zero() else text


def paired_table(
    runs: list[RunResult],
    pairs: list[tuple[str, str]],
    envs: list[str] | None = None,
) -> str:
    """Paired differences a - b (by seed) of both metrics, 95% t half width; bold where the interval excludes 0."""
    lines = [
        "| env | difference | seeds | mean over training | final eval |",
        "|---|---|---|---|---|",
    ]
    for env in _names(runs, "env_id", envs):
        for a, b in pairs:
            cells = []
            n = 0
            for metric in METRICS.values():
                xa, xb = by_seed(runs, env, a, metric), by_seed(runs, env, b, metric)
                if not set(xa) & set(xb):
                    break
                interval = paired_interval(xa, xb)
                n = interval.n
                cells.append(_diff_cell(interval))
            if len(cells) == len(METRICS):
                lines.append(f"| {env} | {a} - {b} | {n} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def entropy_table(
    runs: list[RunResult], a: str = "ppg", b: str = "ppo", envs: list[str] | None = None
) -> str:
    """Final policy entropy of `a` and `b` (mean ± 95% t half width) and their paired difference."""
    lines = [
        f"| env | seeds | {b} final entropy | {a} final entropy | {a} - {b} (paired) |",
        "|---|---|---|---|---|",
    ]
    for env in _names(runs, "env_id", envs):
        ea, eb = by_seed(runs, env, a, final_entropy), by_seed(runs, env, b, final_entropy)
        seeds = sorted(set(ea) & set(eb))
        if not seeds:
            continue
        ia, ib = t_interval([ea[s] for s in seeds]), t_interval([eb[s] for s in seeds])
        d = paired_interval(ea, eb)
        lines.append(
            f"| {env} | {len(seeds)} | {ib.format(2)} | {ia.format(2)} | {_diff_cell_digits(d, 2)} |"
        )
    return "\n".join(lines)


def _diff_cell_digits(interval: Interval, digits: int) -> str:
    text = interval.format(digits, signed=True)
    return f"**{text}**" if interval.excludes_zero() else text


def per_run_records(runs: list[RunResult]) -> list[dict]:
    return [
        {
            "algo": r.algo,
            "env_id": r.env_id,
            "seed": r.seed,
            "total_steps": r.total_steps,
            "episodes": len(r.episode_returns),
            "mean_over_training": mean_over_training(r),
            "final_eval": r.final_eval,
            "final_entropy": final_entropy(r),
            "steps_per_s": r.steps_per_s,
            "curve_20_bins": [
                round(float(x), 2) for x in binned_curve(r.episode_steps, r.episode_returns, r.total_steps)
            ],
        }
        for r in runs
    ]


def _band(ax, x: np.ndarray, stack: np.ndarray, label: str) -> None:
    mean = stack.mean(0)
    ax.plot(x, mean, label=f"{label} ({len(stack)})")
    if len(stack) > 1:
        half = np.array([t_interval(col).half_width for col in stack.T])
        ax.fill_between(x, mean - half, mean + half, alpha=0.15)


def plot_returns(runs: list[RunResult], out: Path, algos: list[str], envs: list[str], bins: int = 50) -> Path:
    """Training-episode return per env (one panel each), mean over seeds with its 95% t band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    envs = [e for e in envs if any(r.env_id == e for r in runs)]
    fig, axes = plt.subplots(1, len(envs), figsize=(4.2 * len(envs), 3.4), squeeze=False)
    for ax, env in zip(axes[0], envs, strict=True):
        for algo in algos:
            cell = [r for r in runs if r.env_id == env and r.algo == algo]
            if not cell:
                continue
            total = min(r.total_steps for r in cell)
            stack = np.stack([binned_curve(r.episode_steps, r.episode_returns, total, bins) for r in cell])
            _band(ax, (np.arange(bins) + 0.5) * total / bins, stack, algo)
        ax.set_title(env, fontsize=9)
        ax.set_xlabel("environment steps")
        ax.ticklabel_format(axis="x", style="sci", scilimits=(0, 0))
    axes[0][0].set_ylabel("training episode return")
    axes[0][-1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=80)
    plt.close(fig)
    return out


def plot_entropy(runs: list[RunResult], out: Path, algos: list[str], envs: list[str]) -> Path:
    """Policy entropy after each update, per env, mean over seeds with its 95% t band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    envs = [e for e in envs if any(r.env_id == e and len(r.entropy) for r in runs)]
    fig, axes = plt.subplots(1, len(envs), figsize=(4.2 * len(envs), 3.4), squeeze=False)
    for ax, env in zip(axes[0], envs, strict=True):
        for algo in algos:
            cell = [r for r in runs if r.env_id == env and r.algo == algo and len(r.entropy)]
            if not cell:
                continue
            n = min(len(r.entropy) for r in cell)
            _band(ax, cell[0].entropy_steps[:n], np.stack([r.entropy[:n] for r in cell]), algo)
        ax.set_title(env, fontsize=9)
        ax.set_xlabel("environment steps")
        ax.ticklabel_format(axis="x", style="sci", scilimits=(0, 0))
    axes[0][0].set_ylabel("policy entropy (nats)")
    axes[0][-1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=80)
    plt.close(fig)
    return out


def group(runs: list[RunResult]) -> dict[tuple[str, str], list[RunResult]]:
    cells: dict[tuple[str, str], list[RunResult]] = defaultdict(list)
    for r in runs:
        cells[(r.env_id, r.algo)].append(r)
    return cells
