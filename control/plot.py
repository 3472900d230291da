"""Learning curves: mean and spread across seeds of runs' evaluation (or training-episode) returns."""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from pathlib import Path

import numpy as np


def load_curve(run: Path, source: str = "eval") -> tuple[np.ndarray, np.ndarray]:
    """(steps, returns) from a run folder's eval.csv or episodes.csv."""
    path = run / ("eval.csv" if source == "eval" else "episodes.csv")
    rows = [r for r in csv.reader(path.open()) if r] if path.is_file() else []
    return np.array([float(r[0]) for r in rows]), np.array([float(r[1]) for r in rows])


def label_of(run: Path) -> str:
    cfg = json.loads((run / "config.json").read_text())
    noise = cfg.get("reward_noise") or cfg.get("reward_flip_p")
    rescaled = f" vf {cfg['vf_coef']:.3g}" if cfg.get("vf_coef", 0.5) != 0.5 else ""
    return f"{cfg['algo']}{rescaled} {cfg['env_id']}" + (f" noise {noise}" if noise else "")


def plot_runs(runs: list[Path], out: Path, source: str = "episodes", points: int = 50) -> Path:
    """Group runs by (algo, env, noise), interpolate each seed's curve onto a common grid, and draw the mean
    with a min-max band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups: dict[str, list[tuple[np.ndarray, np.ndarray]]] = defaultdict(list)
    for run in runs:
        steps, returns = load_curve(run, source)
        if len(steps):
            groups[label_of(run)].append((steps, returns))
    fig, ax = plt.subplots(figsize=(7, 4))
    for label, curves in sorted(groups.items()):
        end = min(s[-1] for s, _ in curves)
        grid = np.linspace(min(s[0] for s, _ in curves), end, points)
        smoothed = []
        for steps, returns in curves:
            window = max(1, len(returns) // 20)
            kernel = np.convolve(returns, np.ones(window) / window, mode="valid")
            smoothed.append(np.interp(grid, steps[window - 1 :], kernel))
        stack = np.stack(smoothed)
        ax.plot(grid, stack.mean(0), label=f"{label} ({len(curves)} seeds)")
        ax.fill_between(grid, stack.min(0), stack.max(0), alpha=0.2)
    ax.set_xlabel("environment steps")
    ax.set_ylabel("evaluation return" if source == "eval" else "training episode return")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
