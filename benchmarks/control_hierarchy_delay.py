"""How much a switch could gain by choosing the hand-over moment (issue 24): from each hand-over snapshot of a
task seed's pair, the pair's transition policy (`--during transition`) or the primitive before the hand-over
(`--during previous`) runs k steps before the next primitive takes over; per delay k, the share of snapshots whose
next subtask succeeds, the best single delay (the most a fixed rule reaches), each snapshot's best delay (the most
any switch reaches) and how often the outcome flips between neighbouring delays (`control.hierarchy.delays`);
where the seed's switch is trained, its own success and hand-over steps from the same snapshots.

    python benchmarks/control_hierarchy_delay.py --task catching --root runs/hierarchy-jaco --seed 1 \
        --delays 0,5,10,15,20,25,30,40,50 --repeats 2 --label=-catch3m

Reads a root the pipeline trained (its hand-over starts, and the pair's transition policy for `transition`);
writes nothing there. A switch trained on those starts may have learnt them by heart: `--fresh none` measures on
fresh hand-overs instead. Adds an entry `<task>-<pair>-s<seed>[-fresh-<mode>]<label>` to
benchmarks/results/control_hierarchy_delay.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import gymnasium as gym  # noqa: E402

import control.hierarchy  # noqa: E402,F401  (registers the Hierarchy/ ids)
from align.progress import Progress  # noqa: E402
from control.hierarchy.config import ConfigError, load_config  # noqa: E402
from control.hierarchy.controller import RUN_MODES, SwitchEnv, collect_handover_snapshots  # noqa: E402
from control.hierarchy.delays import check_delays, delay_outcomes, delay_summary, switch_outcomes  # noqa: E402
from control.hierarchy.pipeline import composition_for_seed, starts_path  # noqa: E402
from control.hierarchy.transition_env import load_snapshots  # noqa: E402

DURING = ("transition", "previous")
DEFAULT_DELAYS = (0, 5, 10, 15, 20, 25, 30, 40, 50)  # those up to the task's transition horizon
FRESH_SEED = 500_000  # task episodes of fresh hand-overs (the pipeline's starts and evaluation use others)


def measure(
    task: str,
    root: str,
    config: str | None,
    seed: int,
    pair: tuple[str, str] | None,
    during: str,
    snapshots: int,
    delays: list[int] | None,
    repeats: int,
    episode_seed: int,
    fresh_mode: str | None = None,
) -> dict:
    """The delay table and its summary for one task seed's pair (the task's first pair by default), from the
    seed's hand-over starts (what its transition and switch trained on) or, with `fresh_mode` (a hand-over mode
    of the task run), from as many fresh hand-overs of task episodes run that way."""
    cfg = load_config(task, config, root=root)
    if delays is None:
        delays = [k for k in DEFAULT_DELAYS if k <= cfg.transition.horizon]
    check_delays(delays, cfg.transition.horizon)  # before anything loads
    pair = pair or cfg.pair_list[0]
    if pair not in cfg.pair_list:
        known = ", ".join("-".join(p) for p in cfg.pair_list)
        raise ConfigError(f"--pair {'-'.join(pair)}: not a hand-over pair of {task} ({known})")
    path = starts_path(cfg, seed, pair)
    if fresh_mode is None and not path.is_file():
        raise ConfigError(
            f"{path}: no hand-over starts (run the task's 'starts' stage for seed {seed} first)"
        )
    env = gym.make(cfg.task_env, **cfg.task_kwargs)
    comp = composition_for_seed(cfg, seed, env)
    if during == "transition" and pair not in comp.transitions:
        raise ConfigError(
            f"{cfg.transition_dir(seed, pair)}: no transition policy (or use --during previous)"
        )
    runner = comp.transitions[pair] if during == "transition" else comp.primitives[pair[0]]
    if fresh_mode is None:
        starts = load_snapshots(path)[:snapshots]
    else:
        found = collect_handover_snapshots(
            env, comp, [pair], snapshots, FRESH_SEED, 20 * snapshots, fresh_mode
        )
        starts = found[pair]
    switch_env = SwitchEnv(env, pair, runner, comp.primitives[pair[1]], starts, cfg.transition.horizon)
    t0 = time.perf_counter()
    with Progress(len(starts), "delays", unit="snapshot") as bar:
        table = delay_outcomes(switch_env, starts, delays, episode_seed, repeats, lambda i: bar.update(1))
    learnt = {}
    if during == "transition" and pair in comp.switches:  # the pair's trained switch from the same snapshots
        rows = switch_outcomes(switch_env, starts, comp.switches[pair], episode_seed)
        learnt = {
            "switch_success": float(sum(ok for ok, _ in rows) / len(rows)),
            "switch_mean_delay": float(sum(t for _, t in rows) / len(rows)),
            "switch_delays": [t for _, t in rows],
        }
    env.close()
    return {
        "task": task,
        "seed": seed,
        "pair": list(pair),
        "during": during,
        "snapshots_from": "starts" if fresh_mode is None else f"fresh ({fresh_mode})",
        "delays": delays,
        **delay_summary(table, delays),
        **learnt,
        "seconds": round(time.perf_counter() - t0, 1),
        "table": ["".join("1" if ok else "0" for ok in row) for row in table[:, :, 0]],  # a char per delay
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", required=True, help="A hierarchy task (catching, serve, hurdle, ...).")
    parser.add_argument("--root", required=True, help="The task's pipeline root.")
    parser.add_argument("--config", help="The root's YAML config, if it was trained with one.")
    parser.add_argument(
        "--seed", type=int, default=1, help="The task seed whose starts and transition are used."
    )
    parser.add_argument("--pair", help="The hand-over pair, from-to (default: the task's first).")
    parser.add_argument("--during", choices=DURING, default="transition", help="What runs during the delay.")
    parser.add_argument("--snapshots", type=int, default=100, help="The first N hand-over snapshots.")
    parser.add_argument(
        "--fresh",
        choices=RUN_MODES,
        help="Instead of the seed's starts, N fresh hand-overs of task episodes run in this mode.",
    )
    parser.add_argument(
        "--delays", help="Delays in steps, a,b,... (default: 0,5,...,30,40,50 up to the transition horizon)."
    )
    parser.add_argument("--repeats", type=int, default=1, help="Run each cell on this many reset seeds.")
    parser.add_argument("--episode-seed", type=int, default=0, help="Snapshot i resets with seed + i.")
    parser.add_argument("--label", default="", help="Suffix of the entry's name (use --label=-x).")
    parser.add_argument("--out", default="benchmarks/results/control_hierarchy_delay.json")
    args = parser.parse_args()
    try:
        delays = [int(k) for k in args.delays.split(",")] if args.delays else None
    except ValueError:
        parser.error(f"--delays: expected whole numbers a,b,..., got {args.delays!r}")
    if args.repeats < 1 or args.snapshots < 1:
        parser.error("--repeats and --snapshots must be at least 1")
    pair = tuple(args.pair.split("-", 1)) if args.pair else None
    if pair is not None and len(pair) != 2:
        parser.error(f"--pair: expected from-to, got {args.pair!r}")
    if not Path(args.root).is_dir():
        parser.error(f"--root {args.root}: no such folder")
    try:
        result = measure(
            args.task,
            args.root,
            args.config,
            args.seed,
            pair,
            args.during,
            args.snapshots,
            delays,
            args.repeats,
            args.episode_seed,
            args.fresh,
        )
    except (ConfigError, ValueError) as exc:
        parser.error(str(exc))
    fresh = f"-fresh-{args.fresh}" if args.fresh else ""
    name = f"{args.task}-{'-'.join(result['pair'])}-s{args.seed}{fresh}{args.label}"
    out = Path(args.out)
    entries = json.loads(out.read_text()) if out.is_file() else {}
    entries[name] = result
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(entries, indent=1) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k not in ("table", "switch_delays")}, indent=1))


if __name__ == "__main__":
    main()
