"""Benchmark: PPO vs PPG (proximal policy gradient) vs normality-guided PPO (with / without bonus).

Runs algorithms x envs x seeds through the control sweep runner (resumable: finished runs are skipped), then
writes a markdown table (final greedy evaluation and mean of the last 10 training episodes, mean +- std across
seeds), a JSON of per-run numbers, and one learning-curve plot per env.

    # small budget (what fits on a shared 2-core CPU):
    nice python benchmarks/control_ppg_ndppo.py --steps 20000 --seeds 1,2,3 --workers 2
    # paper-scale run:
    python benchmarks/control_ppg_ndppo.py --steps 1000000 --seeds 1,2,3,4,5 --workers 16
"""

from __future__ import annotations

import argparse
import csv
import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from control.config import TrainConfig
from control.plot import plot_runs
from control.sweep import plan, run_sweep

DEFAULT_ENVS = "Hopper-v5,HalfCheetah-v5,Walker2d-v5,BipedalWalker-v3"
DEFAULT_ALGOS = "ppo,ppg,ndppo,ndppo-nobonus"


def last_training_returns(run: Path, count: int = 10) -> float:
    """Mean env return (no bonus, no shaping) of the last `count` training episodes of a run."""
    rows = (
        [r for r in csv.reader((run / "episodes.csv").open()) if r]
        if (run / "episodes.csv").is_file()
        else []
    )
    return float(np.mean([float(r[1]) for r in rows[-count:]])) if rows else float("nan")


def table(results: list[dict]) -> str:
    """Markdown table: one row per env, one column per algorithm, `eval mean +- std (train last-10)`."""
    algos = list(dict.fromkeys(r["algo"] for r in results))
    envs = list(dict.fromkeys(r["env_id"] for r in results))
    cells: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for r in results:
        cells[(r["env_id"], r["algo"])].append(r)
    lines = ["| env | " + " | ".join(algos) + " |", "|---" * (len(algos) + 1) + "|"]
    for env in envs:
        row = []
        for algo in algos:
            runs = cells[(env, algo)]
            ev = np.array([r["eval_mean_return"] for r in runs], dtype=float)
            tr = np.array([r["train_last10"] for r in runs], dtype=float)
            row.append(f"{ev.mean():.1f} ± {ev.std():.1f} ({tr.mean():.1f}), n={len(runs)}" if runs else "-")
        lines.append(f"| {env} | " + " | ".join(row) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--algos", default=DEFAULT_ALGOS)
    p.add_argument("--envs", default=DEFAULT_ENVS)
    p.add_argument("--seeds", default="1,2,3")
    p.add_argument("--steps", type=int, default=1_000_000, help="Environment steps per run (same for all).")
    p.add_argument("--num-steps", type=int, default=2048, help="Rollout length per env (PPO default 2048).")
    p.add_argument("--eval-episodes", type=int, default=5)
    p.add_argument("--reward-noise", type=float, default=0.0, help="Gaussian reward noise (core wrapper).")
    p.add_argument("--workers", type=int, default=None, help="Parallel runs (default: every core).")
    p.add_argument("--root", default="runs/bench_ppg_ndppo", help="Run folders (resumable).")
    p.add_argument("--out", default="benchmarks/control_ppg_ndppo_results", help="Table, JSON and plots.")
    args = p.parse_args(argv)

    base = TrainConfig(
        total_steps=args.steps,
        num_steps=args.num_steps,
        eval_episodes=args.eval_episodes,
        reward_noise=args.reward_noise,
    )
    envs, algos = args.envs.split(","), args.algos.split(",")
    configs = plan(base, algos, envs, [int(s) for s in args.seeds.split(",")], Path(args.root))
    summaries = run_sweep(configs, args.workers)
    results = [
        {**s, "train_last10": last_training_returns(Path(c.out_dir))}
        for s, c in zip(summaries, configs, strict=True)
    ]

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    header = (
        f"Budget {args.steps} env steps per run, seeds {args.seeds}, reward noise {args.reward_noise}. "
        "Cell: final greedy eval return mean ± std over seeds (mean of last 10 training episodes)."
    )
    md = header + "\n\n" + table(results) + "\n"
    (out / "table.md").write_text(md)
    (out / "results.json").write_text(
        json.dumps(
            {"args": {k: v for k, v in vars(args).items() if k not in ("root", "out")}, "runs": results},
            indent=1,
        )
    )
    for env in envs:
        runs = [Path(c.out_dir) for c in configs if c.env_id == env]
        plot_runs(runs, out / f"curves_{env.replace('/', '_')}.png", source="episodes")
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
