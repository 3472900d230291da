"""`python -m control train|evaluate|enjoy|plot|sweep|hierarchy`.

python -m control train --algo ppo --env CartPole-v1 --steps 100000           # a new folder under runs/control
python -m control train --algo sppo --env Hopper-v5 --steps 1000000 --reward-noise 0.05 --out-dir runs/sppo
python -m control evaluate runs/sppo --episodes 30 --greedy false
python -m control enjoy runs/sppo --episodes 3 --video sppo.mp4
python -m control plot runs/control/* --out curves.png
python -m control sweep --algos ppo,sppo --envs LunarLander-v3,Hopper-v5 --seeds 1,2,3 --steps 200000 --root runs/sweep
python -m control hierarchy all --task hurdle --seeds 1,2,3 --root runs/hierarchy

Rerunning a stopped run's command resumes it; a run folder refuses a changed config (--overwrite starts over).
Parsing and argument errors import neither torch nor gymnasium: help is instant.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path
from typing import Any

from align.user_errors import ArgumentParser, UserError, positive_int, strict_bool, unknown_name
from control.algo_names import BUILTIN_ALGORITHMS
from control.config import TrainConfig, config_problems

PROG = "python -m control"
_OWN_FLAGS = ("algo", "env_id", "total_steps", "hidden")


def _json_object(text: str) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {text!r} ({e.msg})") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {text!r}")
    return value


def _sizes(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def _int_list(text: str) -> list[int]:
    return list(_sizes(text))


def _number(cast: type) -> Any:
    def parse(text: str) -> Any:
        try:
            return cast(text)
        except ValueError:
            kind = "an integer" if cast is int else "a number"
            raise argparse.ArgumentTypeError(f"expected {kind}, got {text!r}") from None

    parse.__name__ = cast.__name__
    return parse


def add_train_options(p: argparse.ArgumentParser) -> None:
    """One flag per TrainConfig field (`--learning-rate` for `learning_rate`), with its help text."""
    for f in dataclasses.fields(TrainConfig):
        if f.name in _OWN_FLAGS:
            continue
        flag = "--" + f.name.replace("_", "-")
        kind, help_text = str(f.type), f.metadata.get("help")
        default = f.default if f.default is not dataclasses.MISSING else None
        if kind.startswith("bool"):
            p.add_argument(  # `--flag` alone means true
                flag, type=strict_bool, nargs="?", const=True, default=default, help=help_text, metavar="BOOL"
            )
        elif kind.startswith("dict"):
            p.add_argument(flag, type=_json_object, default={}, help=help_text, metavar="JSON")
        else:
            cast = float if "float" in kind else int if "int" in kind else str
            p.add_argument(
                flag, type=_number(cast) if cast is not str else str, default=default, help=help_text
            )
    p.add_argument("--hidden", type=_sizes, default=(64, 64), help="MLP hidden sizes, e.g. 64,64.")
    add_allow_pickle(p)


def add_allow_pickle(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--allow-pickle",
        action="store_true",
        help="Load checkpoints or snapshots that need pickle (older versions' files): only files you trust, "
        "since unpickling can run code.",
    )


def check_algo(name: str) -> str:
    if name not in BUILTIN_ALGORITHMS:
        raise unknown_name("algorithm (--algo)", name, list(BUILTIN_ALGORITHMS))
    return name


def train_config(args: argparse.Namespace, **over: Any) -> TrainConfig:
    """The TrainConfig of the parsed flags, checked (a `UserError` names each bad flag)."""
    values = {
        f.name: getattr(args, f.name)
        for f in dataclasses.fields(TrainConfig)
        if hasattr(args, f.name) and f.name not in ("algo", "env_id", "total_steps")
    }
    cfg = TrainConfig(**{**values, **over})
    problems = config_problems(cfg)
    if problems:
        raise UserError("; ".join(problems))
    return cfg


def _algorithms_help() -> str:
    return "algorithms: " + "; ".join(f"{name}: {text}" for name, text in BUILTIN_ALGORITHMS.items())


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    t = sub.add_parser("train", help="train one run", epilog=_algorithms_help())
    t.add_argument("--algo", default="ppo", help="An algorithm (listed below).")
    t.add_argument("--env", default="CartPole-v1", help="A gymnasium id (ALE/Pong-v5, Hopper-v5, ...).")
    t.add_argument("--steps", type=positive_int, default=100_000, help="Environment steps in total.")
    add_train_options(t)

    e = sub.add_parser("evaluate", help="evaluate saved runs again (noiseless env, frozen normalisation)")
    e.add_argument("runs", nargs="+", type=Path)
    e.add_argument("--episodes", type=positive_int, default=None, help="Default: the run's --eval-episodes.")
    e.add_argument(
        "--greedy", type=strict_bool, default=None, metavar="BOOL", help="Greedy (true) or sampled (false)."
    )
    e.add_argument("--seed", type=int, default=None, help="Default: the run's evaluation seed.")
    add_allow_pickle(e)

    w = sub.add_parser("enjoy", help="watch a trained run play (or record its episodes as MP4/GIF)")
    w.add_argument("run", type=Path)
    w.add_argument("--episodes", type=positive_int, default=1)
    w.add_argument("--video", type=Path, default=None, help="Write the episodes to FILE (.mp4 or .gif).")
    w.add_argument("--greedy", type=strict_bool, default=True, metavar="BOOL")
    w.add_argument("--seed", type=int, default=None, help="Default: the run's evaluation seed.")
    w.add_argument("--fps", type=positive_int, default=None, help="Default: the env's render_fps.")
    w.add_argument("--max-steps", type=positive_int, default=5_000, help="Steps per episode at most.")
    add_allow_pickle(w)

    p = sub.add_parser(
        "plot", help="learning curves of runs (mean and spread across seeds, one panel per env)"
    )
    p.add_argument("runs", nargs="+", type=Path)
    p.add_argument("--out", type=Path, default=Path("curves.png"))
    p.add_argument("--source", choices=("eval", "episodes"), default="episodes")

    s = sub.add_parser("sweep", help="algorithms x envs x seeds, resumable, local processes or Ray")
    s.add_argument("--algos", default="ppo,sppo", help="Comma-separated algorithms.")
    s.add_argument("--envs", default="CartPole-v1")
    s.add_argument("--seeds", type=_int_list, default=[1, 2, 3])
    s.add_argument("--steps", type=positive_int, default=100_000)
    s.add_argument("--root", default="runs/sweep")
    s.add_argument(
        "--workers",
        type=positive_int,
        default=None,
        help="Local processes (default: one per core; one per N cores with --rollout-workers N).",
    )
    s.add_argument("--backend", choices=("local", "ray"), default="local")
    s.add_argument("--ray-address", default=None)
    add_train_options(s)

    from control.hierarchy.cli import add_arguments as add_hierarchy_arguments

    h = sub.add_parser("hierarchy", help="transition policies for hierarchical tasks (stages, resumable)")
    add_hierarchy_arguments(h)
    add_allow_pickle(h)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "allow_pickle", False):
        from align.checkpoints import ALLOW_PICKLE_ENV

        os.environ[ALLOW_PICKLE_ENV] = "1"  # worker processes inherit the opt-in
    if args.command == "train":
        cfg = train_config(args, algo=check_algo(args.algo), env_id=args.env, total_steps=args.steps)
        from control.envs import check_env_id

        check_env_id(cfg.env_id)
        from control.train import train

        print(json.dumps(train(cfg), indent=1))
    elif args.command == "evaluate":
        from control.evaluate import evaluate_run

        for run in args.runs:
            print(json.dumps(evaluate_run(run, args.episodes, args.greedy, args.seed)))
    elif args.command == "enjoy":
        from control.enjoy import enjoy

        print(
            json.dumps(
                enjoy(args.run, args.episodes, args.video, args.greedy, args.seed, args.fps, args.max_steps)
            )
        )
    elif args.command == "plot":
        from control.plot import plot_runs

        print(plot_runs(args.runs, args.out, args.source))
    elif args.command == "sweep":
        algos = [check_algo(a) for a in args.algos.split(",")]
        envs = args.envs.split(",")
        base = train_config(args, total_steps=args.steps)
        from control.envs import check_env_id

        for env_id in envs:
            check_env_id(env_id)
        from control.sweep import plan, run_sweep

        configs = plan(base, algos, envs, args.seeds, Path(args.root))
        for summary in run_sweep(configs, args.workers, args.backend, args.ray_address, quiet=base.quiet):
            print(json.dumps(summary))
    else:
        from control.hierarchy.cli import run as run_hierarchy

        return run_hierarchy(args)
    return 0


def entry() -> int:
    from align.user_errors import run_command

    return run_command(main, PROG)


if __name__ == "__main__":
    sys.exit(entry())
