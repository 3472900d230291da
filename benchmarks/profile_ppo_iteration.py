"""Where one PPO iteration of our LM trainer spends its time and memory: the torch profiler over one iteration
(after a warm-up), split into the phases of the trainer (generation, reward, scoring = old log-probs, values
and reference log-probs, update), with the peak resident memory of each phase and the top operators.

    python benchmarks/profile_ppo_iteration.py --size small            # full fine-tuning
    python benchmarks/profile_ppo_iteration.py --size small --lora --trace trace.json
    python benchmarks/profile_ppo_iteration.py --summary runs/*.json     # medians (min-max) of saved splits

The workload is the one of `benchmarks/ares_ppo_iteration.py` (8 prompts x 4 samples, 48 new tokens, one
update epoch, one minibatch of 32), one torch thread.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import defaultdict
from functools import wraps
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

from ares_ppo_iteration import build, make_ours, reset_peak_rss, rss_mb  # noqa: E402


def instrument(trainer, phases: dict[str, list[float]]) -> None:
    """Wrap the trainer's phases in profiler ranges and record their wall time and peak RSS."""
    import torch

    import align.trainers.ppo as ppo

    def wrap(owner, name: str, label: str, setter=None):
        fn = getattr(owner, name)

        @wraps(fn)
        def timed(*args, **kwargs):
            before = rss_mb("VmRSS")
            reset_peak_rss()
            t0 = time.perf_counter()
            with torch.profiler.record_function(f"phase/{label}"):
                out = fn(*args, **kwargs)
            phases[f"{label}_s"].append(time.perf_counter() - t0)
            phases[f"{label}_rss_before_mb"].append(before)
            phases[f"{label}_peak_rss_mb"].append(rss_mb("VmHWM"))
            return out

        (setter or (lambda f: setattr(owner, name, f)))(timed)

    wrap(ppo, "sample_chunk", "generation")
    wrap(trainer, "reward_fn", "reward")
    wrap(trainer, "_score", "scoring")
    wrap(trainer, "update", "update")


PHASES = ("generation", "reward", "scoring", "update", "other")


def summary(files: list[str]) -> str:
    """A Markdown table of saved splits (`--out`), grouped by file name up to its last `.rN` part: seconds
    per phase and peak RSS, medians with min-max."""
    import statistics

    groups: dict[str, list[dict]] = defaultdict(list)
    for f in files:
        groups[Path(f).stem.rsplit(".r", 1)[0]].append(json.loads(Path(f).read_text()))
    keys = ["iteration_s", *(f"{p}_s" for p in PHASES), "peak_rss_iteration_mb"]
    lines = ["| run | n | " + " | ".join(keys) + " |", "| --- " * (len(keys) + 2) + "|"]
    for name, splits in groups.items():
        cells = []
        for k in keys:
            v = [s.get(k, 0.0) for s in splits]
            fmt = ".0f" if k.endswith("mb") else ".2f"
            cells.append(f"{statistics.median(v):{fmt}} ({min(v):{fmt}}-{max(v):{fmt}})")
        lines.append(f"| {name} | {len(splits)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="small", choices=("tiny", "small"))
    parser.add_argument("--lora", action="store_true")
    parser.add_argument("--top", type=int, default=25, help="Operators listed, by self CPU time.")
    parser.add_argument("--trace", default=None, help="Write a Chrome trace of the profiled iteration here.")
    parser.add_argument("--out", default=None, help="Write the phase split as JSON here.")
    parser.add_argument(
        "--no-profiler",
        action="store_true",
        help="Phase times and memory only (the profiler's own cost off).",
    )
    parser.add_argument("--summary", nargs="+", default=None, help="Saved splits to summarise (no run).")
    args = parser.parse_args()
    if args.summary:
        print(summary(args.summary))
        return

    import torch
    from torch.profiler import ProfilerActivity, profile

    torch.set_num_threads(1)
    torch.manual_seed(0)
    path = build(args.size, Path(tempfile.mkdtemp()) / args.size)
    trainer = make_ours(path, args.lora)
    phases: dict[str, list[float]] = defaultdict(list)
    instrument(trainer, phases)
    reset_peak_rss()
    trainer.step()  # warm-up
    warmup = {k: v[0] for k, v in phases.items()}
    warmup["peak_rss_iteration_mb"] = rss_mb("VmHWM")
    phases.clear()
    reset_peak_rss()
    t0 = time.perf_counter()
    if args.no_profiler:
        trainer.step()
    else:
        with profile(activities=[ProfilerActivity.CPU], profile_memory=True, record_shapes=True) as prof:
            trainer.step()
    total = time.perf_counter() - t0
    peak = rss_mb("VmHWM")
    if not args.no_profiler:
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.top))
        print(prof.key_averages().table(sort_by="self_cpu_memory_usage", row_limit=12))
        if args.trace:
            prof.export_chrome_trace(args.trace)
    split = {"size": args.size, "lora": args.lora, "iteration_s": total, "peak_rss_iteration_mb": peak}
    for key, values in phases.items():
        split[key] = max(values) if "rss" in key else sum(values)
    split["other_s"] = total - sum(
        split.get(f"{p}_s", 0.0) for p in ("generation", "reward", "scoring", "update")
    )
    split["warmup"] = warmup
    print("SPLIT " + json.dumps(split))
    if args.out:
        Path(args.out).write_text(json.dumps(split, indent=1))


if __name__ == "__main__":
    main()
