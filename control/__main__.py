"""`python -m control train|evaluate|plot|sweep|hierarchy`.

python -m control train --algo sppo --env Hopper-v5 --steps 1000000 --seed 1 --reward-noise 0.05 --discretize-bins 11
python -m control plot runs/control/* --out curves.png
python -m control evaluate runs/control --episodes 30 --greedy false
python -m control sweep --algos ppo,sppo --envs LunarLander-v3,Hopper-v5 --seeds 1,2,3 --steps 200000 --root runs/sweep
python -m control hierarchy all --task hurdle --seeds 1,2,3 --root runs/hierarchy
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from control.config import TrainConfig


def _add_train_options(p: argparse.ArgumentParser) -> None:
    for f in dataclasses.fields(TrainConfig):
        if f.name in ("algo", "env_id", "total_steps", "hidden"):
            continue
        flag = "--" + f.name.replace("_", "-")
        kind = str(f.type)
        if kind.startswith("bool"):
            p.add_argument(
                flag,
                type=lambda s: s.lower() in ("1", "true", "yes"),
                default=f.default,
                help=f.metadata.get("help"),
                metavar="BOOL",
            )
        elif kind.startswith("dict"):
            p.add_argument(flag, type=json.loads, default={}, help=f.metadata.get("help"), metavar="JSON")
        else:
            cast = float if "float" in kind else int if "int" in kind else str
            p.add_argument(flag, type=cast, default=f.default, help=f.metadata.get("help"))


def _config(args: argparse.Namespace, **over) -> TrainConfig:
    values = {
        f.name: getattr(args, f.name)
        for f in dataclasses.fields(TrainConfig)
        if hasattr(args, f.name) and f.name not in ("algo", "env_id", "total_steps")
    }
    return TrainConfig(**values, **over)


def _algorithms_help() -> str:
    from control.algos.registry import ALGORITHMS

    return "Registered algorithms: " + "; ".join(
        f"{a.name} ({a.description or a.family})" for a in ALGORITHMS.values()
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m control", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train one run", epilog=_algorithms_help())
    t.add_argument("--algo", default="ppo", help="A registered algorithm (listed below).")
    t.add_argument("--env", default="CartPole-v1")
    t.add_argument("--steps", type=int, default=100_000)
    _add_train_options(t)
    p = sub.add_parser("plot", help="learning curves of runs (mean and spread across seeds)")
    p.add_argument("runs", nargs="+")
    p.add_argument("--out", default="curves.png")
    p.add_argument("--source", choices=("eval", "episodes"), default="episodes")
    e = sub.add_parser("evaluate", help="evaluate saved runs again (noiseless env, frozen normalisation)")
    e.add_argument("runs", nargs="+")
    e.add_argument("--episodes", type=int, default=None, help="Default: the run's --eval-episodes.")
    e.add_argument(
        "--greedy",
        type=lambda x: x.lower() in ("1", "true", "yes"),
        default=None,
        metavar="BOOL",
        help="Greedy (true) or sampled (false) actions; default: the run's setting.",
    )
    e.add_argument("--seed", type=int, default=None, help="Default: the run's evaluation seed.")
    s = sub.add_parser("sweep", help="algorithms x envs x seeds, resumable, local processes or Ray")
    s.add_argument("--algos", default="ppo,sppo", help="Comma-separated registered algorithms.")
    s.add_argument("--envs", default="CartPole-v1")
    s.add_argument("--seeds", default="1,2,3")
    s.add_argument("--steps", type=int, default=100_000)
    s.add_argument("--root", default="runs/sweep")
    s.add_argument("--workers", type=int, default=None, help="Local processes (default: every core).")
    s.add_argument("--backend", choices=("local", "ray"), default="local")
    s.add_argument("--ray-address", default=None)
    _add_train_options(s)
    from control.hierarchy.cli import add_arguments as add_hierarchy_arguments

    h = sub.add_parser("hierarchy", help="transition policies for hierarchical tasks (stages, resumable)")
    add_hierarchy_arguments(h)
    args = parser.parse_args(argv)
    if args.command == "hierarchy":
        from control.hierarchy.cli import run as run_hierarchy

        return run_hierarchy(args)
    from control.algos import registry

    if args.command == "train":
        registry.get(args.algo)
        print(
            json.dumps(
                __import__("control.train", fromlist=["train"]).train(
                    _config(args, algo=args.algo, env_id=args.env, total_steps=args.steps)
                ),
                indent=1,
            )
        )
    elif args.command == "evaluate":
        from control.evaluate import evaluate_run

        for run in args.runs:
            print(json.dumps(evaluate_run(Path(run), args.episodes, args.greedy, args.seed)))
    elif args.command == "plot":
        from control.plot import plot_runs

        print(plot_runs([Path(r) for r in args.runs], Path(args.out), args.source))
    else:
        from control.sweep import plan, run_sweep

        for a in args.algos.split(","):
            registry.get(a)
        configs = plan(
            _config(args, total_steps=args.steps),
            args.algos.split(","),
            args.envs.split(","),
            [int(x) for x in args.seeds.split(",")],
            Path(args.root),
        )
        for summary in run_sweep(configs, args.workers, args.backend, args.ray_address):
            print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    from align.user_errors import run_command

    sys.exit(run_command(main, "python -m control"))
