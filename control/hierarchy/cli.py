"""`python -m control hierarchy STAGE --task TASK ...`: run a stage of a hierarchical task (or all of them, or
the report over seeds); every stage resumes from its run folders. A mistyped stage, task, flag value or config
file exits with code 2 and one line naming it (with a "did you mean")."""

from __future__ import annotations

import argparse
import json
import sys

STAGE_CHOICES = ("primitives", "transitions", "switch", "evaluate", "all", "report")
PROG = "python -m control hierarchy"


class UsageError(ValueError):
    """A flag value the user got wrong."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("stage", help=f"Stage to run: {', '.join(STAGE_CHOICES)} ('all': the four in order).")
    p.add_argument(
        "--task",
        default="hurdle",
        help="patrol, hurdle, obstacle, picking, catching, serve or toy (a preset).",
    )
    p.add_argument("--config", default=None, help="YAML file overriding fields of the preset.")
    p.add_argument("--root", default=None, help="Root folder of the runs (default runs/hierarchy).")
    p.add_argument("--seeds", default=None, help="Comma-separated seeds of transitions/switch/evaluation.")
    p.add_argument("--eval-episodes", default=None, help="Evaluation episodes per seed and policy.")
    p.add_argument("--workers", default="1", help="Parallel jobs (seeds, or primitives).")
    p.add_argument("--backend", default="local", help="local (processes) or ray.")
    p.add_argument("--ray-address", default=None)
    p.add_argument(
        "--overwrite",
        nargs="?",
        const="true",
        default="false",
        metavar="BOOL",
        help="Start the task over: empty <root>/<task> and retrain the shared primitives whose recorded "
        "settings differ (without it, a changed config is refused, naming each field).",
    )


def _positive_int(flag: str, value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1 or str(value).strip() != str(number):
        raise UsageError(f"{flag}: expected a positive whole number, got {value!r}")
    return number


def _strict_bool(flag: str, value: str) -> bool:
    from align.user_errors import strict_bool

    try:
        return strict_bool(value)
    except argparse.ArgumentTypeError as exc:
        raise UsageError(f"{flag}: {exc}") from None


def _choice(flag: str, value: str, known: tuple[str, ...]) -> str:
    from control.hierarchy.config import did_you_mean

    if value not in known:
        raise UsageError(
            f"{flag}: unknown value {value!r}{did_you_mean(value, known)}; expected {', '.join(known)}"
        )
    return value


def parse(args: argparse.Namespace):
    """The stage, the task's config and the run options from the parsed flags; raises `UsageError` or
    `ConfigError` with a one-line message for anything a user got wrong."""
    from control.hierarchy.config import load_config

    stage = _choice("stage", args.stage, STAGE_CHOICES)
    backend = _choice("--backend", args.backend, ("local", "ray"))
    seeds = None
    if args.seeds is not None:
        try:
            seeds = [int(s) for s in args.seeds.split(",")]
        except ValueError:
            raise UsageError(f"--seeds: expected comma-separated whole numbers, got {args.seeds!r}") from None
    episodes = (
        _positive_int("--eval-episodes", args.eval_episodes) if args.eval_episodes is not None else None
    )
    workers = _positive_int("--workers", args.workers)
    overwrite = _strict_bool("--overwrite", args.overwrite)
    cfg = load_config(
        args.task, args.config, root=args.root, seeds=seeds, eval_episodes=episodes, overwrite=overwrite
    )
    return stage, cfg, workers, backend


def run(args: argparse.Namespace) -> int:
    from control.hierarchy.config import ConfigError

    try:
        stage, cfg, workers, backend = parse(args)
    except ConfigError as exc:
        message = str(exc)
        if message.startswith("unknown hierarchical task"):
            message = f"--task: {message}"
        elif args.config is not None and message.startswith(str(args.config)):
            message = f"--config {message}"
        return _usage_error(message)
    except UsageError as exc:
        return _usage_error(str(exc))
    from control.hierarchy.pipeline import STAGES, report, run_stage
    from control.hierarchy.start_states import NoRunningStates
    from control.hierarchy.task_record import open_task_record

    # a changed config is refused (ConfigChanged: exit 2, naming each field) before any stage runs
    open_task_record(cfg, write=stage != "report")
    stages = STAGES if stage == "all" else () if stage == "report" else (stage,)
    try:
        for name in stages:
            for result in run_stage(cfg, name, workers, backend, args.ray_address):
                print(json.dumps({"stage": name, **_brief(result)}))
    # a stage run before the one that makes its inputs; primitives too weak to record a run from
    except (FileNotFoundError, NoRunningStates) as exc:
        return _usage_error(str(exc))
    if stage in ("all", "report", "evaluate"):
        print(json.dumps({"report": report(cfg)}))
    return 0


def _usage_error(message: str) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return 2


def _brief(result: dict) -> dict:
    """The result without per-episode lists."""
    if "results" in result:
        return {
            **result,
            "results": {
                m: {k: v for k, v in r.items() if k != "counts"} for m, r in result["results"].items()
            },
        }
    return result
