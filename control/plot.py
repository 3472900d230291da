"""Learning curves: mean and spread across seeds of runs' evaluation (or training-episode) returns, one panel
per environment."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from align.user_errors import UserError
from control.run import read_rows


def load_curve(run: Path, source: str = "eval") -> tuple[np.ndarray, np.ndarray]:
    """(steps, returns) from a run folder's eval.csv or episodes.csv."""
    rows = read_rows(run / ("eval.csv" if source == "eval" else "episodes.csv"))
    return np.array([float(r[0]) for r in rows]), np.array([float(r[1]) for r in rows])


def run_config(run: Path) -> dict:
    path = run / "config.json"
    if not path.is_file():
        raise UserError(f"{run}: not a control run folder (no config.json)")
    return json.loads(path.read_text())


def label_of(cfg: dict) -> str:
    """The curve's label inside its env's panel: algorithm, rescaling and noise."""
    noise = cfg.get("reward_noise") or cfg.get("reward_flip_p")
    rescaled = f" vf {cfg['vf_coef']:.3g}" if cfg.get("vf_coef", 0.5) != 0.5 else ""
    return f"{cfg['algo']}{rescaled}" + (f" noise {noise}" if noise else "")


def plot_runs(runs: list[Path], out: Path, source: str = "episodes", points: int = 50) -> Path:
    """One panel per env; in each, runs grouped by (algo, noise), each seed's curve interpolated onto a common
    grid, the mean drawn with a min-max band. Missing folders, folders that are not runs and runs without
    any logged return are errors."""
    missing = [str(r) for r in runs if not Path(r).is_dir()]
    if missing:
        raise UserError(f"no such run folder: {', '.join(missing[:5])}")
    panels: dict[str, dict[str, list[tuple[np.ndarray, np.ndarray]]]] = defaultdict(lambda: defaultdict(list))
    for run in runs:
        cfg = run_config(Path(run))
        steps, returns = load_curve(Path(run), source)
        if len(steps):
            panels[cfg["env_id"]][label_of(cfg)].append((steps, returns))
    if not panels:
        what = "evaluation (eval.csv)" if source == "eval" else "training episodes (episodes.csv)"
        raise UserError(f"none of the {len(runs)} run(s) has logged {what} yet: nothing to plot")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    envs = sorted(panels)
    cols = min(3, len(envs))
    rows = (len(envs) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(5.5 * cols, 3.8 * rows), squeeze=False)
    for ax, env in zip(axes.flat, envs, strict=False):
        for label, curves in sorted(panels[env].items()):
            grid = np.linspace(min(s[0] for s, _ in curves), min(s[-1] for s, _ in curves), points)
            smoothed = []
            for steps, returns in curves:
                window = max(1, len(returns) // 20)
                kernel = np.convolve(returns, np.ones(window) / window, mode="valid")
                smoothed.append(np.interp(grid, steps[window - 1 :], kernel))
            stack = np.stack(smoothed)
            ax.plot(grid, stack.mean(0), label=f"{label} ({len(curves)} seed{'s' * (len(curves) > 1)})")
            ax.fill_between(grid, stack.min(0), stack.max(0), alpha=0.2)
        ax.set_title(env)
        ax.set_xlabel("environment steps")
        ax.set_ylabel("evaluation return" if source == "eval" else "training episode return")
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(envs) :]:
        ax.axis("off")
    fig.tight_layout()
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return Path(out)
