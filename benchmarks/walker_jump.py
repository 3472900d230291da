"""Walker Jump (issue 24): train a Jump variant from a trained Forward, and find where Jump runs touch the curb.

`train`: a Jump PPO run warm-started from a Forward run folder (as the pipeline's `primitive_init`), with the
presets' PPO settings (8 envs x 1024 steps, minibatch 256) and the given env kwargs (e.g. `curb_heights`),
then its greedy successes on the candidates' held-out seeds (30 episodes from 40,000) at the task's curb;
resumable (the same command goes on from the run's checkpoint). `contacts`: greedy episodes of Jump runs with
every curb set to each given height, counted as successes, falls, and touches by where a foot met the curb: its
top (a foot landing on it), its front face, or the edge between them. `takeoff`: greedy episodes of Jump runs at
the task's curb, each episode's last touch-downs before the curb and its outcome there, and how many of the curbs
reached are passed when the take-off (the nearest of the last two touch-downs) lies in the env's `takeoff_window`
or outside it (the reward weight `takeoff` pays for the window).
(Where Forward hands over to Jump in the Hurdle, and how much a later hand-over could give:
`benchmarks/control_hierarchy_delay.py --task hurdle --pair forward-jump --during previous`.)

    python benchmarks/walker_jump.py train --forward runs/hier3/primitives/forward --out runs/jump/h05-25 \
        --env-kwargs '{"restart_prob": 0.75, "curb_heights": [0.05, 0.25]}' --seed 1 --steps 2000000
    python benchmarks/walker_jump.py contacts --heights 0.05,0.15,0.25 --runs runs/hier3/primitives/jump-seed3
    python benchmarks/walker_jump.py takeoff --episodes 60 --runs runs/jump/long16m-s1
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import Any

import gymnasium as gym

import control.hierarchy  # noqa: F401  (registers the Hierarchy/ ids)
from control.config import TrainConfig
from control.hierarchy.policies import RunPolicy
from control.hierarchy.primitive_eval import episode_outcome, run_success
from control.hierarchy.resumable import ResumableEnvs
from control.hierarchy.task_record import train_run
from control.hierarchy.walker import OBSERVATION_KWARGS, RewardWeights
from control.hierarchy.warm_start import warm_start

JUMP = "Hierarchy/Walker2dJump-v0"
HELD_OUT_SEED = 40_000  # the candidates' count (pipeline.CANDIDATE_SEED)


def observation_kwargs(env_kwargs: dict[str, Any]) -> dict[str, Any]:
    """The part of a run's training env kwargs that shapes its observation (needed at evaluation too; the rest
    are training only)."""
    return {k: v for k, v in env_kwargs.items() if k in OBSERVATION_KWARGS}


def run_observation_kwargs(run: str) -> dict[str, Any]:
    """`observation_kwargs` of the run folder `run` (from its config.json)."""
    return observation_kwargs(json.loads((Path(run) / "config.json").read_text()).get("env_kwargs") or {})


def train(
    forward: str,
    out: str,
    env_kwargs: dict[str, Any],
    seed: int,
    steps: int,
    ppo_kwargs: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The Jump run in `out` (warm-started from `forward` at its first start), then its held-out successes.
    `ppo_kwargs` override the presets' PPO settings (TrainConfig fields, e.g. `gae_lambda`)."""
    cfg = TrainConfig(
        algo="ppo",
        env_id=JUMP,
        env_kwargs=env_kwargs,
        total_steps=steps,
        out_dir=out,
        eval_every=max(steps // 5, 1),
        checkpoint_every=max(steps // 20, 1),
        num_envs=8,
        num_steps=1024,
        minibatch_size=256,
        seed=seed,
        **(ppo_kwargs or {}),
    )
    if not (Path(out) / "checkpoint.pt").is_file():
        warm_start(Path(forward), cfg)
    train_run(cfg, ResumableEnvs(), False)
    result = run_success(JUMP, out, 30, HELD_OUT_SEED, observation_kwargs(env_kwargs)).as_dict()
    result.pop("lengths")
    extra = {"ppo_kwargs": ppo_kwargs} if ppo_kwargs else {}
    return {"run": out, "env_kwargs": env_kwargs, **extra, "seed": seed, "steps": steps, **result}


def touch_kind(raw: Any) -> str:
    """Where a foot touches the curb at this step: 'top' (the contact normal points down), 'face' (sideways),
    'edge' (between), or 'other' (another body part)."""
    for j in range(raw.data.ncon):
        contact = raw.data.contact[j]
        geoms = (int(contact.geom1), int(contact.geom2))
        if raw.is_obstacle[list(geoms)].any() and any(g in raw.foot_geoms for g in geoms):
            nx, nz = abs(contact.frame[0]), abs(contact.frame[2])
            return "top" if nz > 0.9 else ("face" if nx > 0.9 else "edge")
    return "other"


def contacts(run: str, height: float, episodes: int, seed: int) -> dict[str, int]:
    """Outcome counts of `episodes` greedy episodes of Jump run `run` with every curb `height` metres high."""
    env = gym.make(JUMP, curb_heights=[height, height], **run_observation_kwargs(run))
    raw, policy = env.unwrapped, RunPolicy(Path(run), env.observation_space, env.action_space)
    counts = dict.fromkeys(("success", "fall", "timeout", "top", "edge", "face", "other"), 0)
    for k in range(episodes):
        obs, _ = env.reset(seed=seed + k)
        terminated = truncated = False
        while not (terminated or truncated):
            obs, _, terminated, truncated, info = env.step(policy.act(obs))
        outcome = episode_outcome(info, terminated)
        counts[touch_kind(raw) if outcome == "collision" else outcome] += 1
    env.close()
    return counts


def touch_downs(run: str, episodes: int, seed: int) -> list[dict[str, Any]]:
    """Greedy episodes of Jump run `run` at the task's curb, each up to its curb's outcome ('passed': the subtask;
    'collision', 'fall', 'timeout'): the feet's touch-downs on the floor before the curb, as (foot, metres from the
    foot's centre to the curb's start), the last two of each episode."""
    env = gym.make(JUMP, **run_observation_kwargs(run))
    raw, policy = env.unwrapped, RunPolicy(Path(run), env.observation_space, env.action_space)
    rows = []
    for k in range(episodes):
        obs, _ = env.reset(seed=seed + k)
        curb, down, touches = raw.obstacles[0], raw.feet_on_floor(), []
        terminated = truncated = False
        info: dict[str, Any] = {}
        while not (terminated or truncated or info.get("subtasks")):
            obs, _, terminated, truncated, info = env.step(policy.act(obs))
            now = raw.feet_on_floor()
            for foot in (0, 1):
                x = float(raw.data.geom_xpos[raw.foot_geoms[foot], 0])
                if now[foot] and not down[foot] and x < curb.start:
                    touches.append((foot, round(curb.start - x, 3)))
            down = now
        outcome = "passed" if info.get("subtasks") else episode_outcome(info, terminated)
        rows.append({"outcome": outcome, "last_touch_downs": touches[-2:]})
    env.close()
    return rows


def takeoff_summary(rows: list[dict[str, Any]], window: tuple[float, float]) -> dict[str, Any]:
    """Of the episodes that reach their curb, how many pass it, by whether the last touch-down (the take-off)
    lies in `window` (metres before the curb's start) with no touch-down nearer than it."""
    counts = {"in_window": [0, 0], "outside": [0, 0]}  # [passed, reached]
    for row in rows:
        if row["outcome"] not in ("passed", "collision") or not row["last_touch_downs"]:
            continue
        nearest = min(d for _, d in row["last_touch_downs"])
        key = "in_window" if window[0] <= nearest <= window[1] else "outside"
        counts[key][1] += 1
        counts[key][0] += row["outcome"] == "passed"
    return {k: {"passed": p, "reached": n} for k, (p, n) in counts.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=["train", "contacts", "takeoff"])
    parser.add_argument("--forward", help="train: the Forward run folder the Jump starts from.")
    parser.add_argument("--out", help="train: the Jump run folder.")
    parser.add_argument(
        "--env-kwargs", default='{"restart_prob": 0.75}', help="train: the Jump env's kwargs."
    )
    parser.add_argument(
        "--ppo-kwargs",
        default="{}",
        help="train: PPO settings over the presets', e.g. '{\"gae_lambda\": 0.99}'.",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--steps", type=int, default=2_000_000)
    parser.add_argument("--runs", help="contacts: Jump run folders, a,b,...")
    parser.add_argument("--heights", default="0.05,0.15,0.25", help="contacts: curb heights, a,b,...")
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--episode-seed", type=int, default=HELD_OUT_SEED)
    args = parser.parse_args()
    if args.what == "train":
        if not (args.forward and args.out):
            parser.error("train needs --forward and --out")
        ppo_kwargs = json.loads(args.ppo_kwargs)
        unknown = sorted(set(ppo_kwargs) - {f.name for f in dataclasses.fields(TrainConfig)})
        if unknown:
            parser.error(f"--ppo-kwargs: not a TrainConfig field: {', '.join(unknown)}")
        result = train(
            args.forward,
            args.out,
            json.loads(args.env_kwargs),
            args.seed,
            args.steps,
            ppo_kwargs,
        )
    elif args.what == "takeoff":
        if not args.runs:
            parser.error("takeoff needs --runs")
        result = {}
        for run in args.runs.split(","):
            rows = touch_downs(run, args.episodes, args.episode_seed)
            result[run] = {"summary": takeoff_summary(rows, RewardWeights().takeoff_window), "episodes": rows}
    else:
        if not args.runs:
            parser.error("contacts needs --runs")
        heights = [float(h) for h in args.heights.split(",")]
        result = {
            f"{run}@{h}": contacts(run, h, args.episodes, args.episode_seed)
            for run in args.runs.split(",")
            for h in heights
        }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
