"""The speed cost of `ppo.activation_checkpointing`, measured inside one process: one trainer on the workload
of `benchmarks/ares_ppo_iteration.py`, whose iterations alternate between the modes (the order flips from
round to round), so that the load of a shared machine falls on every mode alike; whole-process comparisons
on a loaded machine spread too much for a 10% question. Peak memory is not measured here (a process has
one high-water mark): see `ares_ppo_iteration.py --impls ours-ckpt-MODE`.

    python benchmarks/ppo_checkpointing_ab.py --lora --rounds 4 --out ab_lora.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

from ares_ppo_iteration import PROMPTS, SAMPLES, build, make_ours  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="small", choices=("tiny", "small"))
    parser.add_argument("--lora", action="store_true")
    parser.add_argument("--modes", default="none,selective,full")
    parser.add_argument("--rounds", type=int, default=4, help="Iterations per mode (one per round).")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    torch.manual_seed(0)
    modes = args.modes.split(",")
    trainer = make_ours(build(args.size, Path(tempfile.mkdtemp()) / args.size), args.lora)
    trainer.step()  # warm-up
    times: dict[str, list[float]] = {m: [] for m in modes}
    for round_ in range(args.rounds):
        for mode in modes if round_ % 2 == 0 else modes[::-1]:
            trainer.config.activation_checkpointing = mode
            t0 = time.perf_counter()
            trainer.step()
            times[mode].append(time.perf_counter() - t0)
    base = modes[0]
    result = {"size": args.size, "lora": args.lora, "rounds": args.rounds, "seconds": times}
    for mode in modes:
        ratios = [b / t for t, b in zip(times[mode], times[base], strict=True)]  # speed vs the first mode
        sps = [PROMPTS * SAMPLES / t for t in times[mode]]
        result[mode] = {
            "samples_per_s": statistics.median(sps),
            "speed_vs_" + base: statistics.median(ratios),
            "speed_vs_" + base + "_min_max": [min(ratios), max(ratios)],
        }
        print(
            f"{mode}: {statistics.median(sps):.2f} samples/s, {statistics.median(ratios):.3f}x {base} "
            f"({min(ratios):.3f}-{max(ratios):.3f})",
            flush=True,
        )
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
