"""Walker primitives after a stop (issue 24): do Forward and Backward set off from the states Balance comes to rest
in, and where do Patrol episodes end when the primitives switch at once?

`set-off`: greedy episodes of a Forward or Backward run started from a states file (`primitive_refine`'s
`<name>-refine-starts.npz`, or one recorded here with `record`), counted as set off when the walker is 2 m on in
its direction after 400 steps, and as falls; beside it the run's success in its own plain env (30 episodes).
`record`: Balance's greedy states started from Forward's and Backward's running states (its training starts),
with other episode seeds than the pipeline's, so that `set-off` is measured on states no refinement trained on.
`handover`: Balance runs started from a Patrol root's own hand-over snapshots (where Forward or Backward ended):
how often each stays up through the balance phase.
`trace`: Patrol episodes with a root's primitives (and a seed's transitions and switches for `--mode fixed` or
`dqn`): after how many subtasks and which hand-over each ended, by a fall or the time limit, and whether the
walker had moved more than 1 m since that hand-over.
`pairs`: per hand-over pair of a seed's chain, how often its transition and greedy switch lead to the next
subtask done, from the snapshots its switch trained from and from the hand-overs the DQN chain itself meets
(collected by running the task with the DQN switches, other episode seeds).

    python benchmarks/walker_set_off.py record --root runs/hier --out runs/hier/balance-stops-eval.npz
    python benchmarks/walker_set_off.py set-off --run runs/hier/primitives/forward-refined --primitive forward \
        --states runs/hier/balance-stops-eval.npz
    python benchmarks/walker_set_off.py trace --root runs/hier --episodes 60
    python benchmarks/walker_set_off.py handover --task-dirs runs/hier3/patrol \
        --run runs/hier3/primitives/balance,runs/hier3/primitives/balance-seed2
    python benchmarks/walker_set_off.py pairs --root runs/hier2 --task-seed 1 --episodes 60 --seed 777000
"""

from __future__ import annotations

import argparse
import collections
import json
from pathlib import Path

import gymnasium as gym
import numpy as np

import control.hierarchy  # noqa: F401  (registers the Hierarchy/ ids)
from control.hierarchy.config import load_config
from control.hierarchy.controller import run_episode
from control.hierarchy.pipeline import composition_for_seed, recording_env
from control.hierarchy.policies import RunPolicy
from control.hierarchy.primitive_eval import run_success
from control.hierarchy.start_states import record_running_states, save_states
from control.hierarchy.transition_env import load_snapshots

SET_OFF_METRES, SET_OFF_STEPS = 2.0, 400
FALLEN_HEIGHT = 0.8  # torso height below which a Walker episode ended by a fall
ENV_IDS = {"forward": "Hierarchy/Walker2dForward-v0", "backward": "Hierarchy/Walker2dBackward-v0"}


def record_stops(root: str, out: Path, episodes: int, seed: int, config: str | None = None) -> dict:
    """Balance's greedy states (from step 50 of each episode), its episodes started from the root's recorded
    running states of Forward and Backward."""
    cfg = load_config("patrol", config, root=root)
    env = recording_env(cfg, "balance")  # from the root's recorded running states, as the pipeline does
    policy = RunPolicy(cfg.base_primitive_dir("balance"), env.observation_space, env.action_space)
    qpos, qvel = record_running_states(env, policy, episodes, seed, max_steps=300)
    save_states(out, qpos, qvel)
    return {"states": len(qpos), "median_speed": float(np.median(np.abs(qvel[:, 0]))), "file": str(out)}


def set_off(run: str, primitive: str, states: str, episodes: int, seed: int) -> dict:
    """How many of `episodes` greedy episodes from `states` get 2 m on within 400 steps, and how many fall."""
    env = gym.make(ENV_IDS[primitive], start_states=states, start_prob=1.0)
    policy = RunPolicy(Path(run), env.observation_space, env.action_space)
    sign = 1.0 if primitive == "forward" else -1.0
    moved, falls = [], 0
    for k in range(episodes):
        obs, _ = env.reset(seed=seed + k)
        x0 = float(env.unwrapped.data.qpos[0])
        for _ in range(SET_OFF_STEPS):
            obs, _, terminated, _, _ = env.step(policy.act(obs))
            if terminated:
                falls += 1
                break
        moved.append(sign * (float(env.unwrapped.data.qpos[0]) - x0))
    env.close()
    plain = run_success(ENV_IDS[primitive], run, 30)
    return {
        "run": run,
        "episodes": episodes,
        "set_off": int((np.asarray(moved) > SET_OFF_METRES).sum()),
        "falls": falls,
        "median_metres": float(np.median(moved)),
        "plain_successes_of_30": plain.successes,
        "plain_falls": plain.falls,
        "steps_trained": plain.steps_trained,
    }


def trace(
    root: str, episodes: int, seed: int, mode: str = "none", task_seed: int = 1, config: str | None = None
) -> dict:
    """Where Patrol episodes end with the root's primitives and, for `fixed`/`dqn`, seed `task_seed`'s transitions
    and switches: (subtasks, the last hand-over, fall or time limit, moved more than 1 m since it or not)."""
    cfg = load_config("patrol", config, root=root)
    env = gym.make(cfg.task_env, **cfg.task_kwargs)
    comp = composition_for_seed(cfg, task_seed, env)
    ends: collections.Counter = collections.Counter()
    for k in range(episodes):
        last: dict = {"pair": "start", "x": 0.0}

        def seen(pair, env_at, last=last) -> None:
            last["pair"], last["x"] = "->".join(pair), float(env_at.unwrapped.data.qpos[0])

        result = run_episode(env, comp, mode, seed + k, on_handover=seen)
        fell = float(env.unwrapped.data.qpos[1]) < FALLEN_HEIGHT  # else the leg's time ran out (or all done)
        moved = abs(float(env.unwrapped.data.qpos[0]) - last["x"]) > 1.0
        key = f"{result.subtasks} subtasks, after {last['pair']}, {'fall' if fell else 'up'}, "
        ends[key + ("moved" if moved else "still")] += 1
    env.close()
    return {"mode": mode, "task_seed": task_seed, "ends": dict(sorted(ends.items()))}


def handover(task_dirs: list[str], runs: list[str], seed: int, steps: int = 150) -> dict:
    """Each Balance run started from the Patrol hand-over snapshots where Forward or Backward ended
    (`<task dir>/s*/transitions/starts-{forward,backward}-balance.json`), switching at once: how many of them it
    stays up for `steps` steps (Patrol's balance phase)."""
    snapshots = [
        snap
        for folder in task_dirs
        for starts in sorted(Path(folder).glob("s*/transitions/starts-*-balance.json"))
        for snap in load_snapshots(starts)
    ]
    env = gym.make("Hierarchy/Walker2dPatrol-v0")
    up = {}
    for run in runs:
        policy = RunPolicy(Path(run), env.observation_space, env.action_space)
        up[run] = 0
        for k, snap in enumerate(snapshots):
            env.reset(seed=seed + k)
            obs, terminated = env.unwrapped.set_snapshot(snap), False
            for _ in range(steps):
                obs, _, terminated, truncated, _ = env.step(policy.act(obs))
                if terminated or truncated:
                    break
            up[run] += int(not terminated)
    env.close()
    return {"snapshots": len(snapshots), "steps": steps, "up": up}


def pair_outcomes(env, comp, pair, starts: list) -> float:
    """The share of `starts` from which `pair`'s transition, handed over by its greedy switch, leads to the next
    subtask done (`SwitchEnv`'s +1)."""
    from control.hierarchy.controller import SwitchEnv

    switch_env = SwitchEnv(env, pair, comp.transitions[pair], comp.primitives[pair[1]], starts, comp.horizon)
    wins = 0
    for i, snapshot in enumerate(starts):
        obs, done, reward = switch_env.start(snapshot, i), False, 0.0
        while not done:
            obs, reward, done = switch_env.step(int(comp.switches[pair].wants_switch(obs, switch_env.t)))
        wins += reward > 0
    return wins / len(starts)


def pairs(root: str, task_seed: int, episodes: int, seed: int, config: str | None = None) -> dict:
    """Per pair: its transition and switch from the starts its switch trained from (the first `episodes`), and
    from as many hand-overs of the DQN chain (task episodes from `seed`)."""
    from control.hierarchy.controller import collect_handover_snapshots
    from control.hierarchy.pipeline import starts_path, switch_starts_path

    cfg = load_config("patrol", config, root=root)
    env = gym.make(cfg.task_env, **cfg.task_kwargs)
    comp = composition_for_seed(cfg, task_seed, env)
    chain_starts = collect_handover_snapshots(
        env, comp, list(comp.switches), episodes, seed, 4 * episodes, "dqn"
    )
    result = {}
    for pair in comp.switches:
        # what the switch trained from, whatever config the root ran with (read only: nothing is collected)
        trained_from = switch_starts_path(cfg, task_seed, pair)
        if not trained_from.is_file():
            trained_from = starts_path(cfg, task_seed, pair)
        own = load_snapshots(trained_from)[:episodes]
        result[f"{pair[0]}-{pair[1]}"] = {
            "own_starts": {"n": len(own), "success": pair_outcomes(env, comp, pair, own)},
            "dqn_chain_starts": {
                "n": len(chain_starts[pair]),
                "success": pair_outcomes(env, comp, pair, chain_starts[pair]) if chain_starts[pair] else None,
            },
        }
    env.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=["record", "set-off", "trace", "handover", "pairs"])
    parser.add_argument("--root", default="runs/hierarchy")
    parser.add_argument(
        "--config",
        default=None,
        help="The YAML the root's pipeline ran with (e.g. its primitive_candidates).",
    )
    parser.add_argument("--out", default=None, help="record: the states file to write.")
    parser.add_argument(
        "--run",
        default=None,
        help="set-off: the Forward or Backward run folder; handover: Balance runs, a,b,...",
    )
    parser.add_argument("--task-dirs", default=None, help="handover: Patrol task folders, a,b,...")
    parser.add_argument("--primitive", choices=sorted(ENV_IDS), default="forward")
    parser.add_argument("--states", default=None, help="set-off: the states file to start from.")
    parser.add_argument("--episodes", type=int, default=30)
    parser.add_argument("--seed", type=int, default=40_000)
    parser.add_argument(
        "--mode", choices=["none", "fixed", "dqn"], default="none", help="trace: the hand-over."
    )
    parser.add_argument(
        "--task-seed", type=int, default=1, help="trace, pairs: whose transitions and switches."
    )
    args = parser.parse_args()
    if args.what == "record":
        out = Path(args.out or Path(args.root) / "balance-stops-eval.npz")
        result = record_stops(args.root, out, max(args.episodes, 1), args.seed, args.config)
    elif args.what == "set-off":
        if not (args.run and args.states):
            parser.error("set-off needs --run and --states")
        result = set_off(args.run, args.primitive, args.states, args.episodes, args.seed)
    elif args.what == "handover":
        if not (args.run and args.task_dirs):
            parser.error("handover needs --run and --task-dirs")
        result = handover(args.task_dirs.split(","), args.run.split(","), args.seed)
    elif args.what == "pairs":
        result = pairs(args.root, args.task_seed, args.episodes, args.seed, args.config)
    else:
        result = trace(args.root, args.episodes, args.seed, args.mode, args.task_seed, args.config)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
