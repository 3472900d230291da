"""Transition policies on the Walker2d-v5 hierarchical tasks: success counts of the three policies (switch at
once, transition + fixed hand-over, transition + Double-DQN switch) against the paper, switch training curves,
and env steps/s of the composed tasks against bare Walker2d-v5.

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/control_hierarchy.py --tasks patrol,hurdle --seeds 1,2,3 \
        --root runs/hierarchy --transition-steps 40000 --switch-episodes 150 --eval-episodes 50
    python benchmarks/control_hierarchy.py --speed-only

Every stage resumes from its run folders under --root (primitives are shared by the tasks). Writes
benchmarks/results/control_hierarchy.json and benchmarks/results/control_hierarchy_switch.png.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

import control.hierarchy  # noqa: E402,F401  (registers the Hierarchy/ ids)
from control.hierarchy.config import load_config  # noqa: E402
from control.hierarchy.pipeline import STAGES, report, run_stage  # noqa: E402
from control.hierarchy.primitive_eval import run_success  # noqa: E402
from control.hierarchy.switch import read_episodes  # noqa: E402

PAPER = {  # success counts (max 5): Byun & Perrault (ICLR 2022) and Lee et al. (ICLR 2019) as reported there
    "patrol": {"paper": 3.97, "lee": 3.33},
    "hurdle": {"paper": 4.84, "lee": 3.14},
    "obstacle": {"paper": 3.72, "lee": 1.90},
}
SPEED_ENVS = {
    "bare": "Walker2d-v5",
    "patrol": "Hierarchy/Walker2dPatrol-v0",
    "hurdle": "Hierarchy/Walker2dHurdle-v0",
    "obstacle": "Hierarchy/Walker2dObstacleCourse-v0",
}


def env_speed(env_id: str, steps: int, seed: int = 0) -> float:
    """Random-action steps per second, resets included."""
    env = gym.make(env_id)
    env.reset(seed=seed)
    env.action_space.seed(seed)
    t0 = time.perf_counter()
    for _ in range(steps):
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            env.reset()
    rate = steps / (time.perf_counter() - t0)
    env.close()
    return rate


def speeds(steps: int, repeats: int) -> dict[str, dict[str, float]]:
    """Median and range over `repeats` rounds; the envs alternate within each round."""
    rates: dict[str, list[float]] = {k: [] for k in SPEED_ENVS}
    for _ in range(repeats):
        for name, env_id in SPEED_ENVS.items():
            rates[name].append(env_speed(env_id, steps))
    bare = statistics.median(rates["bare"])
    return {
        k: {
            "median": statistics.median(v),
            "min": min(v),
            "max": max(v),
            "vs_bare": statistics.median(v) / bare,
        }
        for k, v in rates.items()
    }


def switch_curves(cfg, out: Path) -> None:
    """Success (outcome > 0) of the switch's training episodes, moving average over 25, per pair and seed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pairs = cfg.pair_list
    fig, axes = plt.subplots(1, len(pairs), figsize=(4 * len(pairs), 3), squeeze=False)
    for ax, pair in zip(axes[0], pairs, strict=True):
        for seed in cfg.seeds:
            path = cfg.switch_dir(seed, pair) / "episodes.csv"
            if not path.is_file():
                continue
            outcomes = np.array([float(r["outcome"]) > 0 for r in read_episodes(path)], float)
            if len(outcomes) >= 25:
                ax.plot(np.convolve(outcomes, np.ones(25) / 25, mode="valid"), label=f"seed {seed}")
        ax.set_title(f"{cfg.task}: {pair[0]} -> {pair[1]}")
        ax.set_xlabel("switch training episode")
        ax.set_ylabel("next subtask succeeds")
        ax.set_ylim(-0.05, 1.05)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)


def primitive_table(cfg, episodes: int) -> dict[str, dict]:
    """Each primitive's greedy success in its own env (and how the other episodes ended), with its PPO steps; a
    refined primitive (`primitive_refine`) also with its own run's before the refinement (`base`), one chosen among
    candidate runs (`primitive_candidates`) with every candidate's counts."""
    table = {}
    for name, env_id in cfg.primitives.items():
        result = run_success(env_id, cfg.primitive_dir(name), episodes, env_kwargs=cfg.primitive_kwargs())
        table[name] = {"env": env_id, **{k: v for k, v in result.as_dict().items() if k != "lengths"}}
        if name in cfg.primitive_refine:
            base = run_success(
                env_id, cfg.base_primitive_dir(name), episodes, env_kwargs=cfg.primitive_kwargs()
            )
            table[name]["base"] = {k: v for k, v in base.as_dict().items() if k != "lengths"}
        if name in cfg.primitive_candidates:  # the counts the choice was made on (held-out seeds)
            table[name]["candidates"] = json.loads(cfg.chosen_path(name).read_text())
        print(json.dumps({"primitive": name, **table[name]}))
    return table


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", default="patrol,hurdle,obstacle")
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--root", default="runs/hierarchy")
    parser.add_argument("--config", default=None, help="YAML overriding preset fields (every task).")
    parser.add_argument(
        "--label",
        default="",
        help="A variant's name: its figures go under the task's 'variants' (ablations).",
    )
    parser.add_argument("--transition-steps", type=int, default=None)
    parser.add_argument("--switch-episodes", type=int, default=None)
    parser.add_argument("--eval-episodes", type=int, default=50)
    parser.add_argument(
        "--stages", default=",".join(STAGES), help="Stages to run before the report ('': none)."
    )
    parser.add_argument(
        "--primitive-episodes",
        type=int,
        default=30,
        help="Greedy episodes per primitive (0: skip the table).",
    )
    parser.add_argument("--primitives-only", action="store_true", help="Only the primitives' success table.")
    parser.add_argument("--speed-only", action="store_true")
    parser.add_argument("--speed-steps", type=int, default=5000)
    parser.add_argument("--speed-repeats", type=int, default=0, help="0: skip the env speed measurement.")
    parser.add_argument("--out", default="benchmarks/results/control_hierarchy.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    results = json.loads(out.read_text()) if out.is_file() else {}
    seeds = [int(s) for s in args.seeds.split(",")]

    def save() -> None:
        out.write_text(json.dumps(results, indent=1))

    if args.speed_repeats or args.speed_only:
        rates = speeds(args.speed_steps, max(args.speed_repeats, 1))
        results["env_steps_per_s"] = rates
        print(json.dumps({"env_steps_per_s": rates}))
        save()
    if args.speed_only:
        return
    for task in args.tasks.split(","):
        cfg = load_config(task, args.config, root=args.root, seeds=seeds, eval_episodes=args.eval_episodes)
        if args.transition_steps:
            cfg.transition.steps = args.transition_steps
        if args.switch_episodes:
            cfg.switch.episodes = args.switch_episodes
        if args.primitives_only or "primitives" in args.stages.split(","):
            run_stage(cfg, "primitives")
            if args.primitive_episodes:
                results.setdefault("primitives", {}).update(primitive_table(cfg, args.primitive_episodes))
                save()
        if args.primitives_only:
            continue
        t0 = time.perf_counter()
        for stage in args.stages.split(","):
            if stage and stage != "primitives":  # --stages "": only the report of what is there
                run_stage(cfg, stage)
        summary = report(cfg)
        summary["paper"], summary["seconds"] = PAPER[task], time.perf_counter() - t0
        summary["budget"] = {
            "primitive_steps": cfg.primitive_steps,
            **({"primitive_refine": cfg.primitive_refine} if cfg.primitive_refine else {}),
            **({"primitive_candidates": cfg.primitive_candidates} if cfg.primitive_candidates else {}),
            "transition_steps": cfg.transition.steps,
            "switch_episodes": cfg.switch.episodes,
            "eval_episodes": cfg.eval_episodes,
            **({"chains": cfg.chains, "chain_episodes": cfg.chain_episodes} if cfg.chains > 1 else {}),
        }
        summary["airl"] = dataclasses.asdict(cfg.airl)
        if cfg.primitive_candidates:  # each candidate run's counts and the run chosen
            summary["candidates"] = {
                n: json.loads(cfg.chosen_path(n).read_text()) for n in cfg.primitive_candidates
            }
        if cfg.chains > 1:  # per seed: each policy's chain and every chain's validation mean
            summary["chains"] = {
                str(seed): json.loads((cfg.task_dir(seed) / "evaluation.json").read_text()).get("chains")
                for seed in summary["seeds"]
            }
        if args.label:
            results.setdefault(task, {}).setdefault("variants", {})[args.label] = summary
        else:
            summary["variants"] = results.get(task, {}).get("variants", {})
            results[task] = summary
        switch_curves(cfg, out.with_name(f"control_hierarchy_switch_{task}{args.label}.png"))
        print(json.dumps({task + args.label: summary}))
        save()


if __name__ == "__main__":
    main()
