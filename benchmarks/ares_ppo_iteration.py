"""One PPO iteration (sample, reward, update) of our token-level PPO versus TRL's GRPOTrainer on the same
workload: 8 prompts x 4 samples, the same raw-text prompts, 48 new tokens, top-k 50, one update epoch over
the 32 sequences, a Python reward on the last token.

    python benchmarks/ares_ppo_iteration.py --rounds 3 --iterations 3
    python benchmarks/ares_ppo_iteration.py --baseline /path/to/older/checkout   # ours before vs after
    python benchmarks/ares_ppo_iteration.py --combine a.json b.json --out all.json  # runs split in parts

Every measurement is a whole process (clean peak memory, startup included), and the processes alternate:
each round runs every configuration once, the implementations of a configuration back to back, in an order
that flips from round to round (A B, B A, ...), so that load from other jobs falls on both. Figures are
medians with min-max over the rounds: samples/s of the timed iterations (after one warm-up iteration),
whole-process wall time, and peak resident memory (of the whole process, and of the timed iterations alone).
One torch thread. Models: "tiny" (our offline Llama, hidden 64, 2 layers) and "small" (the same architecture
at hidden 512, 8 layers, ~26M parameters), full fine-tuning and LoRA r 16. Writes every run and the summary
to benchmarks/results/ares_ppo_iteration.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("HF_HUB_OFFLINE", "1")
PROMPTS, SAMPLES, NEW_TOKENS, LORA_R = 8, 4, 48, 16
IMPLS = ("ours", "trl-grpo")


def build(size: str, out: Path) -> Path:
    from align.models.tiny import TinyConfig, build_tiny_lm

    cfg = (
        TinyConfig()
        if size == "tiny"
        else TinyConfig(hidden_size=512, intermediate_size=1376, num_layers=8, num_heads=8)
    )
    return build_tiny_lm(out, seed=0, config=cfg)


def reward_text(text: str) -> float:
    return float(len(text.split()) > 8)


def rss_mb(field: str) -> float:
    """A memory figure of this process from /proc/self/status (VmRSS: now, VmHWM: peak), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def reset_peak_rss() -> bool:
    """Reset the process's peak RSS (Linux: write 5 to /proc/self/clear_refs), so that VmHWM is the peak
    from now on."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def make_ours(path: Path, lora: bool, minibatch: int = PROMPTS * SAMPLES, checkpointing: str | None = None):
    """Our PPOTrainer on the benchmark's workload (raw-text prompts, as GRPO gets them); a `minibatch`
    under the 32 sequences accumulates gradients over the micro-steps (one optimizer step, less memory);
    `checkpointing` sets `activation_checkpointing` (None: the trainer's default, also in older checkouts)."""
    from align.data import load_sample_scienceqa
    from align.generate import SamplingConfig
    from align.models import LoraSettings, load_policy
    from align.trainers.ppo import PPOTrainer
    from align.trainers.ppo_config import PPOConfig
    from align.trainers.reward_fns import SequenceReward

    settings = LoraSettings(r=LORA_R, alpha=2 * LORA_R, dropout=0.0) if lora else None
    policy = load_policy(str(path), lora=settings, dtype="float32")
    extra = {} if checkpointing is None else {"activation_checkpointing": checkpointing}
    cfg = PPOConfig(
        **extra,
        output_dir=tempfile.mkdtemp(),
        prompts_per_iteration=PROMPTS,
        sampling=SamplingConfig(num_samples=SAMPLES, max_new_tokens=NEW_TOKENS, batch_size=PROMPTS),
        chat=False,
        ppo_epochs=1,
        minibatch_size=minibatch,
        gradient_accumulation_steps=PROMPTS * SAMPLES // minibatch,
        save_every=0,
        learning_rate=1e-5,
    )
    reward = SequenceReward(lambda p, t: reward_text(t))
    return PPOTrainer(policy, reward, cfg, load_sample_scienceqa("train"))


def time_ours(
    path: Path,
    lora: bool,
    iterations: int,
    minibatch: int = PROMPTS * SAMPLES,
    checkpointing: str | None = None,
) -> dict:
    trainer = make_ours(path, lora, minibatch, checkpointing)
    trainer.step()  # warm-up
    reset_peak_rss()
    times, parts = [], {"generation": 0.0, "reward": 0.0, "scoring": 0.0, "update": 0.0}
    for _ in range(iterations):
        t0 = time.perf_counter()
        m = trainer.step()
        times.append(time.perf_counter() - t0)
        for k in parts:
            parts[k] += m.get(f"time/{k}_s", 0.0)
    total = sum(times)
    return {
        "samples_per_s": PROMPTS * SAMPLES * iterations / total,
        "s_per_iteration": total / iterations,
        **{f"share_{k}": v / total for k, v in parts.items()},
    }


def time_grpo(path: Path, lora: bool, iterations: int) -> dict:
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from align.data import build_prompt, load_sample_scienceqa

    tok = AutoTokenizer.from_pretrained(path)
    tok.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(path, dtype="float32")
    prompts = [build_prompt(p) for p in load_sample_scienceqa("train")] * 4
    peft_config = None
    if lora:
        from peft import LoraConfig

        peft_config = LoraConfig(
            r=LORA_R,
            lora_alpha=2 * LORA_R,
            lora_dropout=0.0,
            target_modules="all-linear",
            task_type="CAUSAL_LM",
        )
    args = GRPOConfig(
        output_dir=tempfile.mkdtemp(),
        per_device_train_batch_size=PROMPTS * SAMPLES,
        num_generations=SAMPLES,
        max_completion_length=NEW_TOKENS,
        max_steps=iterations + 1,
        learning_rate=1e-5,
        logging_steps=1,
        report_to=[],
        use_cpu=True,
        bf16=False,
        save_strategy="no",
        beta=0.0,
        num_iterations=1,
        top_k=50,
    )
    step_times: list[float] = []

    class Timer(TrainerCallback):
        def on_step_begin(self, *a, **k):
            if len(step_times) == 1:  # after the warm-up step
                reset_peak_rss()
            self.t0 = time.perf_counter()

        def on_step_end(self, *a, **k):
            step_times.append(time.perf_counter() - self.t0)

    trainer = GRPOTrainer(
        model=model,
        reward_funcs=[lambda completions, **kw: [reward_text(c) for c in completions]],
        args=args,
        train_dataset=Dataset.from_dict({"prompt": prompts}),
        processing_class=tok,
        peft_config=peft_config,
        callbacks=[Timer()],
    )
    trainer.train()
    timed = step_times[1:]
    return {
        "samples_per_s": PROMPTS * SAMPLES * len(timed) / sum(timed),
        "s_per_iteration": sum(timed) / len(timed),
    }


def checkpoint_parameters(path: Path) -> int:
    """Parameters stored in a saved model folder (tied weights once)."""
    from safetensors import safe_open

    total = 0
    for file in path.glob("*.safetensors"):
        with safe_open(str(file), "pt") as f:
            total += sum(math.prod(f.get_slice(k).get_shape()) for k in f.keys())
    return total


def child(args: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(1)
    torch.manual_seed(0)
    path = build(args.size, Path(tempfile.mkdtemp()) / args.size)
    if args.impl == "trl-grpo":
        result = time_grpo(path, args.lora, args.iterations)
    else:  # ours, ours-baseline, ours-mbN (minibatches of N, accumulated), ours-ckpt-MODE, ours-mbN-ckpt-MODE
        name, _, checkpointing = args.impl.partition("-ckpt-")
        minibatch = int(name.split("-mb")[1]) if "-mb" in name else PROMPTS * SAMPLES
        result = time_ours(path, args.lora, args.iterations, minibatch, checkpointing or None)
    result["peak_rss_iterations_mb"] = rss_mb("VmHWM")
    result["peak_rss_process_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result["params_m"] = checkpoint_parameters(path) / 1e6
    import align

    result["align_from"] = str(Path(align.__file__).resolve().parent.parent)
    print("RESULT " + json.dumps(result), flush=True)


def run_child(impl: str, size: str, lora: bool, iterations: int, source: Path) -> dict:
    """One whole process; `source` is the checkout whose `align` it imports."""
    cmd = [
        sys.executable,
        __file__,
        "--child",
        "--size",
        size,
        "--impl",
        impl,
        "--iterations",
        str(iterations),
    ]
    cmd += ["--lora"] * lora
    env = {
        **os.environ,
        "PYTHONPATH": str(source),
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=str(source))
    wall = time.perf_counter() - t0
    row = {"impl": impl, "size": size, "lora": lora, "process_s": wall}
    line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
    return {**row, **json.loads(line[7:])} if line else {**row, "error": proc.stderr[-1200:]}


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def load_average() -> float:
    return os.getloadavg()[0]


def _spread(values: list[float], fmt: str) -> str:
    return f"{statistics.median(values):{fmt}} ({min(values):{fmt}}-{max(values):{fmt}})"


def summarise(rows: list[dict], impls: list[str]) -> list[dict]:
    """Per (size, LoRA, impl): medians with min-max; ratios against GRPO paired by round."""
    out = []
    good = [r for r in rows if "error" not in r]
    for size in dict.fromkeys(r["size"] for r in rows):
        for lora in (False, True):
            by_impl = {
                i: [r for r in good if (r["size"], r["lora"], r["impl"]) == (size, lora, i)] for i in impls
            }
            grpo = {r["round"]: r for r in by_impl.get("trl-grpo", [])}
            for impl, runs in by_impl.items():
                if not runs:
                    continue
                entry = {"size": size, "lora": lora, "impl": impl, "rounds": len(runs)}
                for key in ("samples_per_s", "process_s", "peak_rss_process_mb", "peak_rss_iterations_mb"):
                    values = [r[key] for r in runs]
                    entry[key] = {"median": statistics.median(values), "min": min(values), "max": max(values)}
                ratios = [
                    r["samples_per_s"] / grpo[r["round"]]["samples_per_s"] for r in runs if r["round"] in grpo
                ]
                if ratios and impl != "trl-grpo":
                    entry["ratio_vs_grpo"] = {
                        "median": statistics.median(ratios),
                        "min": min(ratios),
                        "max": max(ratios),
                    }
                shares = [k for k in runs[0] if k.startswith("share_")]
                entry.update({k: statistics.median(r[k] for r in runs) for k in shares})
                out.append(entry)
    return out


def markdown(summary: list[dict]) -> str:
    head = (
        "| model | weights | impl | samples/s | vs GRPO | whole process (s) | peak RSS process (MB) "
        "| peak RSS iterations (MB) |\n| --- | --- | --- | --- | --- | --- | --- | --- |"
    )
    lines = [head]
    for e in summary:
        sp = e["samples_per_s"]
        cells = [
            e["size"],
            f"LoRA r{LORA_R}" if e["lora"] else "full",
            e["impl"],
            f"{sp['median']:.2f} ({sp['min']:.2f}-{sp['max']:.2f})",
            (lambda r: f"{r['median']:.2f}x ({r['min']:.2f}-{r['max']:.2f})")(e["ratio_vs_grpo"])
            if "ratio_vs_grpo" in e
            else "-",
            (lambda p: f"{p['median']:.1f} ({p['min']:.1f}-{p['max']:.1f})")(e["process_s"]),
            (lambda p: f"{p['median']:,.0f} ({p['min']:,.0f}-{p['max']:,.0f})")(e["peak_rss_process_mb"]),
            (lambda p: f"{p['median']:,.0f} ({p['min']:,.0f}-{p['max']:,.0f})")(e["peak_rss_iterations_mb"]),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def combine(files: list[Path], out: Path) -> None:
    """One summary of several invocations' runs (each invocation measured whole configurations, so rounds
    are paired within an invocation)."""
    parts = [json.loads(f.read_text()) for f in files]
    rows = [r for part in parts for r in part["runs"]]
    impls = list(dict.fromkeys(r["impl"] for r in rows))
    summary = summarise(rows, impls)
    meta = {"parts": [{"file": f.name, **part["meta"]} for f, part in zip(files, parts, strict=True)]}
    print(markdown(summary))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"meta": meta, "summary": summary, "runs": rows}, indent=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="Alternating repeats of every configuration.")
    parser.add_argument("--iterations", type=int, default=3, help="Timed iterations per process.")
    parser.add_argument("--sizes", default="tiny,small")
    parser.add_argument("--weights", default="full,lora", help="full, lora or both.")
    parser.add_argument(
        "--impls",
        default=",".join(IMPLS),
        help="ours, trl-grpo, ours-mbN (ours with minibatches of N sequences, gradients accumulated), "
        "ours-ckpt-MODE (activation_checkpointing none, selective or full).",
    )
    parser.add_argument(
        "--baseline",
        default=None,
        help="An older checkout: adds 'ours-baseline', our trainer imported from it.",
    )
    parser.add_argument("--out", default="benchmarks/results/ares_ppo_iteration.json")
    parser.add_argument(
        "--combine",
        nargs="+",
        default=None,
        help="Result files of earlier invocations (each a part of the configurations): summarise them together.",
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--size", default="tiny", help=argparse.SUPPRESS)
    parser.add_argument("--impl", default="ours", help=argparse.SUPPRESS)
    parser.add_argument("--lora", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    if args.combine:
        combine([Path(f) for f in args.combine], ROOT / args.out)
        return
    impls = args.impls.split(",")
    sources = {impl: ROOT for impl in impls}
    if args.baseline:
        impls.append("ours-baseline")
        sources["ours-baseline"] = Path(args.baseline).resolve()
    import torch
    import transformers
    import trl

    meta = {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "torch_threads": 1,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "trl": trl.__version__,
        "rounds": args.rounds,
        "timed_iterations": args.iterations,
        "load_before": load_average(),
        "cpu_affinity": sorted(os.sched_getaffinity(0)),
    }
    rows = []
    configs = [(s, w == "lora") for s in args.sizes.split(",") for w in args.weights.split(",")]
    for round_ in range(args.rounds):
        for size, lora in configs:
            order = impls if round_ % 2 == 0 else impls[::-1]
            for impl in order:
                load = load_average()
                row = run_child(impl, size, lora, args.iterations, sources[impl])
                row.update({"round": round_, "load_1min": load})
                rows.append(row)
                print(json.dumps(row), flush=True)
    meta["load_after"] = load_average()
    meta["load_median"] = statistics.median(r["load_1min"] for r in rows)
    summary = summarise(rows, impls)
    table = markdown(summary)
    print(json.dumps(meta))
    print(table)
    out = ROOT / args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"meta": meta, "summary": summary, "runs": rows}, indent=1))


if __name__ == "__main__":
    main()
