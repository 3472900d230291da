"""`python -m control hierarchy STAGE --task TASK ...`: run a stage of a hierarchical task (or all of them, or
the report over seeds); every stage resumes from its run folders."""

from __future__ import annotations

import argparse
import json

STAGE_CHOICES = ("primitives", "transitions", "switch", "evaluate", "all", "report")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("stage", choices=STAGE_CHOICES, help="Stage to run ('all': the four in order).")
    p.add_argument(
        "--task",
        default="hurdle",
        help="patrol, hurdle, obstacle, picking, catching, serve or toy (a preset).",
    )
    p.add_argument("--config", default=None, help="YAML file overriding fields of the preset.")
    p.add_argument("--root", default=None, help="Root folder of the runs (default runs/hierarchy).")
    p.add_argument("--seeds", default=None, help="Comma-separated seeds of transitions/switch/evaluation.")
    p.add_argument("--eval-episodes", type=int, default=None, help="Evaluation episodes per seed and policy.")
    p.add_argument("--workers", type=int, default=1, help="Parallel jobs (seeds, or primitives).")
    p.add_argument("--backend", choices=("local", "ray"), default="local")
    p.add_argument("--ray-address", default=None)


def run(args: argparse.Namespace) -> int:
    from control.hierarchy.config import load_config
    from control.hierarchy.pipeline import STAGES, report, run_stage

    seeds = [int(s) for s in args.seeds.split(",")] if args.seeds else None
    cfg = load_config(args.task, args.config, root=args.root, seeds=seeds, eval_episodes=args.eval_episodes)
    stages = STAGES if args.stage == "all" else () if args.stage == "report" else (args.stage,)
    for stage in stages:
        for result in run_stage(cfg, stage, args.workers, args.backend, args.ray_address):
            print(json.dumps({"stage": stage, **_brief(result)}))
    if args.stage in ("all", "report", "evaluate"):
        print(json.dumps({"report": report(cfg)}))
    return 0


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
