"""Transition policies on the Jaco arm tasks (repetitive picking, repetitive catching, serve): each primitive's
success in its own env, then the task's success counts under the three policies (switch at once, transition +
fixed hand-over, transition + Double-DQN switch) against the papers' figures, and the hand-over starts found.

    OMP_NUM_THREADS=1 nice -n 19 python benchmarks/control_hierarchy_jaco.py --tasks picking,catching,serve \
        --seeds 1,2,3 --root runs/hierarchy-jaco --eval-episodes 50

Every stage resumes from its run folders under --root (the primitives are trained there too unless already
finished; `python -m control train` runs of the same settings can be put there beforehand). Adds one entry per
task to benchmarks/results/control_hierarchy.json (the Walker tasks' schema, plus `primitives` and `starts`) and
writes benchmarks/results/control_hierarchy_switch_<task>.png.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import torch  # noqa: E402
from control_hierarchy import switch_curves  # noqa: E402

import control.envs  # noqa: E402,F401  (registers the Hierarchy/ ids)
from control.hierarchy.config import HierarchyConfig, load_config  # noqa: E402
from control.hierarchy.pipeline import (  # noqa: E402
    STAGES,
    collect_starts,
    report,
    run_stage,
    starts_path,
    task_env,
)
from control.hierarchy.primitive_eval import run_success  # noqa: E402
from control.hierarchy.transition_env import load_snapshots  # noqa: E402

# success counts: Byun & Perrault (ICLR 2022; as quoted from their table by a public survey, the paper itself
# could not be retrieved here) and Lee et al. (ICLR 2019, Table 1: transition + proximity reward, and the modular
# net without transitions)
PAPER = {
    "picking": {"paper": 4.77, "lee": 4.84, "lee_without_transition": 0.99, "max": 5},
    "catching": {"paper": 4.76, "lee": 4.97, "lee_without_transition": 1.00, "max": 5},
    "serve": {"paper": 1.00, "lee": 0.92, "lee_without_transition": 0.11, "max": 1},
}


def primitive_success(cfg: HierarchyConfig, name: str, episodes: int, seed: int = 7_000) -> dict:
    """Greedy episodes of a trained primitive in its own env (`primitive_eval.run_success`): how many succeed,
    and its training steps."""
    result = run_success(
        cfg.primitives[name], cfg.primitive_dir(name), episodes, seed, cfg.primitive_kwargs()
    )
    summary = cfg.primitive_dir(name) / "summary.json"
    steps = json.loads(summary.read_text())["global_step"] if summary.is_file() else result.steps_trained
    return {"successes": result.successes, "episodes": episodes, "steps": int(steps)}


def starts_found(cfg: HierarchyConfig) -> dict[str, list[int]]:
    """Hand-over snapshots saved per pair, per seed."""
    found: dict[str, list[int]] = {}
    for pair in cfg.pair_list:
        paths = [starts_path(cfg, seed, pair) for seed in cfg.seeds]
        found[f"{pair[0]}-{pair[1]}"] = [len(load_snapshots(p)) if p.is_file() else 0 for p in paths]
    return found


def collect_all_starts(cfg: HierarchyConfig) -> None:
    """Every seed's hand-over starts of every pair (what the transitions stage collects before training)."""
    for seed in cfg.seeds:
        env = task_env(cfg)
        for pair in cfg.pair_list:
            collect_starts(cfg, seed, pair, env)
        env.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", default="picking,catching,serve")
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--root", default="runs/hierarchy-jaco")
    parser.add_argument("--config", default=None, help="YAML overriding preset fields (every task).")
    parser.add_argument("--label", default="", help="Suffix of the result keys (ablations).")
    parser.add_argument("--transition-steps", type=int, default=None)
    parser.add_argument("--switch-episodes", type=int, default=None)
    parser.add_argument("--eval-episodes", type=int, default=50)
    parser.add_argument("--primitive-episodes", type=int, default=30)
    parser.add_argument("--workers", type=int, default=1, help="Seeds run in parallel processes.")
    parser.add_argument(
        "--stages",
        default=",".join(STAGES),
        help="Stages to run before the report; 'starts' (this script's): only the hand-over starts of every pair "
        "and seed, without transition policies (with 'evaluate': the switch-at-once row alone).",
    )
    parser.add_argument("--out", default="benchmarks/results/control_hierarchy.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    seeds = [int(s) for s in args.seeds.split(",")]
    for task in args.tasks.split(","):
        cfg = load_config(task, args.config, root=args.root, seeds=seeds, eval_episodes=args.eval_episodes)
        if args.transition_steps:
            cfg.transition.steps = args.transition_steps
        if args.switch_episodes:
            cfg.switch.episodes = args.switch_episodes
        t0 = time.perf_counter()
        stages = [s for s in args.stages.split(",") if s]
        for stage in stages:
            if stage == "starts":
                collect_all_starts(cfg)
            else:
                run_stage(cfg, stage, args.workers if stage != "primitives" else 1)
        summary = report(cfg)
        summary["paper"], summary["seconds"] = PAPER[task], time.perf_counter() - t0
        summary["primitives"] = {
            n: primitive_success(cfg, n, args.primitive_episodes) for n in cfg.primitives
        }
        summary["starts"] = starts_found(cfg)
        summary["budget"] = {
            "primitive_steps": cfg.primitive_steps,
            "primitive_ppo": cfg.primitive_ppo,
            "transition_steps": cfg.transition.steps,
            "switch_episodes": cfg.switch.episodes,
            "eval_episodes": cfg.eval_episodes,
            "task_kwargs": cfg.task_kwargs,
        }
        results = json.loads(out.read_text()) if out.is_file() else {}  # others may have written meanwhile
        summary["airl"] = dataclasses.asdict(cfg.airl)
        summary["switch"] = dataclasses.asdict(cfg.switch)
        if cfg.primitive_candidates:  # each candidate run's counts and the run chosen
            summary["candidates"] = {
                n: json.loads(cfg.chosen_path(n).read_text()) for n in cfg.primitive_candidates
            }
        results[task + args.label] = summary
        out.write_text(json.dumps(results, indent=1))
        if "switch" in stages:
            switch_curves(cfg, out.with_name(f"control_hierarchy_switch_{task}{args.label}.png"))
        print(json.dumps({task + args.label: summary}))


if __name__ == "__main__":
    main()
