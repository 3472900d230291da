"""Benchmark: PPO vs PPG (proximal policy gradient) vs normality-guided PPO (with / without its bonus) vs the
plain quantile-regression PPO, on MuJoCo, over seeds.

Runs algorithms x envs x seeds through the control sweep runner (local processes or a Ray cluster; resumable:
finished runs are skipped, a stopped run continues from its last checkpoint), then writes, from the finished run
folders, a markdown report (returns with 95% t-intervals over seeds, paired differences by seed, final entropy
of PPG vs PPO), a JSON of per-run numbers, and the return and entropy curves as PNGs.

    # what we ran on a shared 2-core CPU (see BENCHMARKS.md for the budget):
    nice -n 19 env OMP_NUM_THREADS=1 python benchmarks/control_ppg_ndppo.py --steps 1000000 --workers 2 \\
        --root runs/bench_ppg_ndppo
    # a machine with more cores, or a Ray cluster (--root on a file system every node shares):
    python benchmarks/control_ppg_ndppo.py --steps 1000000 --seeds 1,2,3,4,5,6,7,8,9,10 --workers 32
    python benchmarks/control_ppg_ndppo.py --backend ray --ray-address auto --root /shared/runs/ppg_ndppo
    # tables and figures from whatever has finished (e.g. while the sweep runs elsewhere):
    python benchmarks/control_ppg_ndppo.py --analyse-only
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import threading
import time
from pathlib import Path

from align.stopping import StopRequested
from align.user_errors import UserError  # a bad flag or run folder: one line, exit code 2
from control.config import TrainConfig
from control.sweep import run_dir, run_sweep

sys.path.insert(0, str(Path(__file__).resolve().parent))
import control_ppg_ndppo_analysis as analysis  # noqa: E402

DEFAULT_ENVS = "Hopper-v5,Walker2d-v5,HalfCheetah-v5"
DEFAULT_ALGOS = "ppo,ppg,ndppo,ndppo-nobonus,qppo"
PAIRS_VS_PPO = ["ppg", "ndppo", "ndppo-nobonus", "qppo"]
PAIRS_ND = [("ndppo", "qppo"), ("ndppo-nobonus", "qppo"), ("ndppo", "ndppo-nobonus")]


def parse_steps(default: int, per_env: str, envs: list[str]) -> dict[str, int]:
    """Budget per env: `default`, overridden by `per_env` ("Env-v5=500000,Other-v5=1000000")."""
    steps = dict.fromkeys(envs, default)
    for item in filter(None, per_env.split(",")):
        env, sep, value = item.partition("=")
        if not sep or env not in steps or not value.isdigit():
            raise UserError(f"--env-steps: expected ENV=STEPS for one of {envs}, got {item!r}")
        steps[env] = int(value)
    return steps


def plan_sweep(
    base: TrainConfig, algos: list[str], envs: list[str], seeds: list[int], steps: dict[str, int], root: Path
) -> list[TrainConfig]:
    """Every (env, seed, algo) run, env-major: a sweep stopped early has every seed of every algorithm on the
    first envs (what paired intervals over seeds need), then the next env's seeds in order."""
    configs = []
    for env_id in envs:
        for seed in seeds:
            for algo in algos:
                cfg = dataclasses.replace(
                    base, algo=algo, env_id=env_id, seed=seed, total_steps=steps[env_id]
                )
                configs.append(dataclasses.replace(cfg, out_dir=str(run_dir(root, cfg))))
    return configs


def check_budgets(configs: list[TrainConfig]) -> None:
    """A run folder trained (or training) for another budget cannot be resumed into this one."""
    for cfg in configs:
        path = Path(cfg.out_dir) / "config.json"
        if path.is_file():
            had = json.loads(path.read_text()).get("total_steps")
            if had != cfg.total_steps:
                raise UserError(
                    f"{cfg.out_dir} was started with {had} steps, this sweep asks {cfg.total_steps}: "
                    "use another --root"
                )


def _steps_done(cfg: TrainConfig) -> int:
    out = Path(cfg.out_dir)
    if (out / "summary.json").is_file():
        return cfg.total_steps
    steps, _ = analysis.read_episodes(out)
    return int(steps[-1]) if len(steps) else 0


def progress(configs: list[TrainConfig], stop: threading.Event, every: float = 60.0) -> None:
    """One progress line (runs finished, steps, ETA) every `every` seconds, from the run folders' logs."""
    total = sum(c.total_steps for c in configs)
    start, t0 = sum(_steps_done(c) for c in configs), time.time()
    while not stop.wait(every):
        done = sum(_steps_done(c) for c in configs)
        finished = sum((Path(c.out_dir) / "summary.json").is_file() for c in configs)
        rate = (done - start) / max(time.time() - t0, 1e-9)
        eta = (total - done) / rate if rate > 0 else float("inf")
        eta_text = f"{int(eta // 3600)}h{int(eta % 3600 // 60):02d}m" if eta < 1e7 else "?"
        print(
            f"\r[sweep] runs {finished}/{len(configs)}  steps {done:,}/{total:,} ({100 * done / total:.1f}%)  "
            f"{rate:,.0f} steps/s  ETA {eta_text}",
            end="",
            flush=True,
        )


def finished_runs(configs: list[TrainConfig]) -> list[analysis.RunResult]:
    return [
        analysis.load_run(Path(c.out_dir)) for c in configs if (Path(c.out_dir) / "summary.json").is_file()
    ]


def report(runs: list[analysis.RunResult], algos: list[str], envs: list[str], header: str) -> str:
    vs_ppo = [(a, "ppo") for a in PAIRS_VS_PPO if a in algos and "ppo" in algos]
    nd = [(a, b) for a, b in PAIRS_ND if a in algos and b in algos]
    parts = [
        header,
        "### Returns (mean ± 95% t half width over seeds)",
        analysis.returns_table(runs, algos, envs),
        "### Paired differences against PPO (by seed; bold: the 95% interval excludes 0)",
        analysis.paired_table(runs, vs_ppo, envs),
    ]
    if nd:
        parts += [
            "### Between the distributional variants (paired by seed)",
            analysis.paired_table(runs, nd, envs),
        ]
    if "ppg" in algos and "ppo" in algos:
        parts += [
            "### Policy entropy at the end of training, PPG vs PPO",
            analysis.entropy_table(runs, envs=envs),
        ]
    return "\n\n".join(parts) + "\n"


def write_outputs(
    runs: list[analysis.RunResult], algos: list[str], envs: list[str], out: Path, header: str, args: dict
) -> str:
    out.mkdir(parents=True, exist_ok=True)
    md = report(runs, algos, envs, header)
    (out / "table.md").write_text(md)
    (out / "results.json").write_text(
        json.dumps({"args": args, "runs": analysis.per_run_records(runs)}, indent=1)
    )
    if runs:
        analysis.plot_returns(runs, out / "returns.png", algos, envs)
        if any(len(r.entropy) for r in runs):
            analysis.plot_entropy(
                runs, out / "entropy_ppg_vs_ppo.png", [a for a in ("ppo", "ppg") if a in algos], envs
            )
    return md


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--algos", default=DEFAULT_ALGOS, help="Comma-separated registered algorithms.")
    p.add_argument("--envs", default=DEFAULT_ENVS, help="Comma-separated gymnasium ids.")
    p.add_argument("--seeds", default="1,2,3,4,5", help="Comma-separated seeds.")
    p.add_argument("--steps", type=int, default=1_000_000, help="Environment steps per run.")
    p.add_argument("--env-steps", default="", help="Per-env budgets overriding --steps: ENV=STEPS,...")
    p.add_argument("--num-steps", type=int, default=2048, help="Rollout length (PPO's 2048).")
    p.add_argument("--gae-lambda", type=float, default=0.95, help="GAE lambda (PPO's 0.95).")
    p.add_argument("--eval-episodes", type=int, default=10, help="Greedy episodes of the final evaluation.")
    p.add_argument("--checkpoint-every", type=int, default=20_480, help="Steps between checkpoints (resume).")
    p.add_argument("--reward-noise", type=float, default=0.0, help="Gaussian reward noise (core wrapper).")
    p.add_argument("--workers", type=int, default=None, help="Parallel runs (default: every core).")
    p.add_argument(
        "--backend", default="local", choices=("local", "ray"), help="Local processes or Ray tasks."
    )
    p.add_argument(
        "--ray-address", default=None, help="Ray cluster address (e.g. auto); default: a local Ray."
    )
    p.add_argument("--root", default="runs/bench_ppg_ndppo", help="Run folders (resumable).")
    p.add_argument("--out", default="benchmarks/control_ppg_ndppo_results", help="Report, JSON and plots.")
    p.add_argument("--analyse-only", action="store_true", help="Only tabulate the runs that have finished.")
    p.add_argument("--progress-every", type=float, default=60.0, help="Seconds between progress lines.")
    args = p.parse_args(argv)

    try:
        envs, algos = args.envs.split(","), args.algos.split(",")
        seeds = [int(s) for s in args.seeds.split(",")]
    except ValueError:
        print(f"error: --seeds must be comma-separated integers, got {args.seeds!r}", file=sys.stderr)
        return 2
    try:
        from control.algos.registry import get

        for algo in algos:
            get(algo)
        steps = parse_steps(args.steps, args.env_steps, envs)
        base = TrainConfig(
            num_steps=args.num_steps,
            gae_lambda=args.gae_lambda,
            eval_episodes=args.eval_episodes,
            checkpoint_every=args.checkpoint_every,
            reward_noise=args.reward_noise,
        )
        configs = plan_sweep(base, algos, envs, seeds, steps, Path(args.root))
        check_budgets(configs)
    except (UserError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    if not args.analyse_only:
        stop = threading.Event()
        monitor = threading.Thread(target=progress, args=(configs, stop, args.progress_every), daemon=True)
        monitor.start()
        t0 = time.time()
        try:
            run_sweep(configs, args.workers, args.backend, args.ray_address)
        except (StopRequested, UserError) as exc:  # Ctrl-C/SIGTERM (runs saved), or a run's user error
            print(f"\n{exc}", file=sys.stderr)
            return 130 if isinstance(exc, StopRequested) else 2
        finally:
            stop.set()
        print(f"\n[sweep] done in {time.time() - t0:,.0f} s")

    budgets = ", ".join(f"{e} {steps[e]:,}" for e in envs)
    header = (
        f"Budget per run: {budgets} env steps; seeds {args.seeds}; algorithms {args.algos}; rollout "
        f"{args.num_steps}, GAE lambda {args.gae_lambda}, other settings the PPO defaults; reward noise "
        f"{args.reward_noise}. Final eval: {args.eval_episodes} greedy episodes after training."
    )
    runs = finished_runs(configs)
    record = {
        k: v for k, v in vars(args).items() if k not in ("root", "out", "analyse_only", "progress_every")
    }
    print(write_outputs(runs, algos, envs, Path(args.out), header, record))
    print(f"{len(runs)}/{len(configs)} runs finished; report in {args.out}/table.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
