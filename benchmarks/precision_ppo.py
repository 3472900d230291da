"""One PPO iteration on the tiny model matrix in float32 and in bf16: bf16 autocast (accelerate's
`mixed_precision: bf16` in one process, as `single_gpu.yaml` runs it) and DeepSpeed's bf16 engine
(`deepspeed_zero2.yaml` as shipped, one process), with DeepSpeed in float32 beside it to separate DeepSpeed's
own cost from bf16's. Samples/s and peak resident memory of the timed iterations; every configuration in its
own process, repeated, medians reported.

    python benchmarks/precision_ppo.py --repeats 3 --iterations 3
    python benchmarks/precision_ppo.py --summary benchmarks/results/precision_ppo.json

The workload is `benchmarks/model_matrix_ppo.py`'s (8 prompts x 4 samples, 32 new tokens, one update epoch,
minibatch 16), full fine-tuning, one torch thread.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import model_matrix_ppo as matrix  # noqa: E402

MODES = ("float32", "bf16-autocast", "deepspeed-float32", "deepspeed-bf16")


def child(args: argparse.Namespace) -> None:
    import torch

    from align.data import load_sample_scienceqa
    from align.generate import SamplingConfig
    from align.models import load_policy
    from align.models.tiny_zoo import build_tiny_model
    from align.trainers.ppo import PPOTrainer
    from align.trainers.ppo_config import PPOConfig
    from align.trainers.reward_fns import SequenceReward

    torch.set_num_threads(1)
    torch.manual_seed(0)
    path = build_tiny_model(args.family, Path(tempfile.mkdtemp()) / args.family)
    policy = load_policy(str(path), dtype="float32")
    samples = load_sample_scienceqa("train")
    problems = [p for p in samples if p.image][:4] + [p for p in samples if not p.image][:4]
    config = PPOConfig(
        output_dir=tempfile.mkdtemp(),
        prompts_per_iteration=matrix.PROMPTS,
        sampling=SamplingConfig(
            num_samples=matrix.SAMPLES, max_new_tokens=matrix.NEW_TOKENS, batch_size=matrix.PROMPTS
        ),
        ppo_epochs=1,
        minibatch_size=16,
        learning_rate=1e-5,
        save_every=0,
        mixed_precision="bf16" if args.mode == "bf16-autocast" else None,  # else: the launch's
    )
    trainer = PPOTrainer(policy, SequenceReward(lambda p, t: float(len(t.split()) > 8)), config, problems)
    trainer.step()  # warm-up
    measured = matrix._reset_peak_rss()
    times = []
    for _ in range(args.iterations):
        t0 = time.perf_counter()
        trainer.step()
        times.append(time.perf_counter() - t0)
    precision = json.loads((Path(config.output_dir) / "precision.json").read_text())
    result = {
        "samples_per_s": matrix.PROMPTS * matrix.SAMPLES / statistics.median(times),
        "s_per_iteration": statistics.median(times),
        "peak_rss_iterations_mb": matrix._rss_mb("VmHWM") if measured else None,
        "precision": precision,
    }
    print("RESULT " + json.dumps(result), flush=True)


def _zero2(tmp: Path, bf16: bool) -> Path:
    """deepspeed_zero2.yaml as shipped (bf16), or with full precision, with one process."""
    import yaml

    config = yaml.safe_load((ROOT / "recipes/configs/accelerate/deepspeed_zero2.yaml").read_text())
    config.update(num_processes=1)
    if not bf16:
        config.update(mixed_precision="no")
    path = tmp / f"zero2-{'bf16' if bf16 else 'fp32'}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def run_one(family: str, mode: str, iterations: int, tmp: Path) -> dict:
    script = [__file__, "--child", "--family", family, "--mode", mode, "--iterations", str(iterations)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACCELERATE_")}
    env.update(TOKENIZERS_PARALLELISM="false", OMP_NUM_THREADS="1")
    if mode.startswith("deepspeed"):
        cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file"]
        cmd += [
            str(_zero2(tmp, mode.endswith("bf16"))),
            "--main_process_port",
            str(matrix._free_port()),
            *script,
        ]
    else:
        cmd = [sys.executable, *script]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=str(ROOT))
    line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
    row = {"family": family, "mode": mode}
    return {**row, **json.loads(line[7:])} if line else {**row, "error": proc.stderr[-800:]}


def cpu_bf16_support() -> str:
    """The CPU's model name and its bf16 flags (AVX512-BF16, AMX-BF16) from /proc/cpuinfo."""
    text = Path("/proc/cpuinfo").read_text()
    model = next(
        (ln.split(":", 1)[1].strip() for ln in text.splitlines() if ln.startswith("model name")), "?"
    )
    flags = next((ln.split(":", 1)[1].split() for ln in text.splitlines() if ln.startswith("flags")), [])
    native = [f for f in ("avx512_bf16", "amx_bf16") if f in flags]
    return f"{model}; bf16 flags: {', '.join(native) or 'none (bf16 emulated)'}"


def summary(rows: list[dict]) -> str:
    """Markdown: per family and mode, the median over repeats of samples/s and peak RSS, and bf16's ratio to
    the float32 run of the same launch."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        if "error" not in r:
            groups.setdefault((r["family"], r["mode"]), []).append(r)
    med = {
        k: (
            statistics.median(x["samples_per_s"] for x in v),
            statistics.median(x["peak_rss_iterations_mb"] for x in v),
            len(v),
        )
        for k, v in groups.items()
    }
    lines = [
        "| family | float32 samples/s | bf16 autocast | DeepSpeed float32 | DeepSpeed bf16 | autocast / float32 "
        "| DeepSpeed bf16 / DeepSpeed float32 | peak RSS MB (fp32 / autocast / DS fp32 / DS bf16) | runs |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    families = list(dict.fromkeys(r["family"] for r in rows))
    ratios: dict[str, list[float]] = {"autocast": [], "deepspeed": []}
    for f in families:
        got = [med.get((f, m)) for m in MODES]
        if None in got:
            continue
        (a, ra, n), (b, rb, _), (c, rc, _), (d, rd, _) = got
        ratios["autocast"].append(b / a)
        ratios["deepspeed"].append(d / c)
        lines.append(
            f"| {f} | {a:.1f} | {b:.1f} | {c:.1f} | {d:.1f} | {b / a:.2f} | {d / c:.2f} | "
            f"{ra:.0f} / {rb:.0f} / {rc:.0f} / {rd:.0f} | {n} |"
        )
    if ratios["autocast"]:
        lines.append(
            f"| median | | | | | {statistics.median(ratios['autocast']):.2f} | "
            f"{statistics.median(ratios['deepspeed']):.2f} | | |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--iterations", type=int, default=3, help="Timed iterations per run (after a warm-up)."
    )
    parser.add_argument("--repeats", type=int, default=3, help="Runs (processes) per family and mode.")
    parser.add_argument("--families", default=",".join(matrix.FAMILIES))
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--child", action="store_true")
    parser.add_argument("--family", default="llama")
    parser.add_argument("--mode", default="float32", choices=MODES)
    parser.add_argument("--out", default="benchmarks/results/precision_ppo.json")
    parser.add_argument("--summary", help="Print the table of a saved result file and exit.")
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    if args.summary:
        data = json.loads(Path(args.summary).read_text())
        print(data["cpu"], "\n")
        print(summary(data["rows"]))
        return
    out = ROOT / args.out
    data = json.loads(out.read_text()) if out.is_file() else {"rows": []}
    data["cpu"] = cpu_bf16_support()
    done = {(r["family"], r["mode"], r["repeat"]) for r in data["rows"] if "error" not in r}
    tmp = Path(tempfile.mkdtemp())
    for repeat in range(args.repeats):  # repeats outermost: a load spike hits one run of each, not all
        for family in args.families.split(","):
            for mode in args.modes.split(","):
                if (family, mode, repeat) in done:  # resumable
                    continue
                row = {**run_one(family, mode, args.iterations, tmp), "repeat": repeat}
                data["rows"].append(row)
                print(json.dumps({k: v for k, v in row.items() if k != "precision"}), flush=True)
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_text(json.dumps(data, indent=1))
    print(summary(data["rows"]))


if __name__ == "__main__":
    main()
