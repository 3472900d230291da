"""One PPO iteration (sample, reward, update) of our token-level PPO versus TRL's GRPOTrainer on the same
workload: 8 prompts x 4 samples, 48 new tokens, one update epoch, a Python reward on the last token.

    python benchmarks/ares_ppo_iteration.py --iterations 3

Each configuration runs in its own process (clean peak memory): model in {tiny (hidden 64, 2 layers),
small (Llama hidden 512, 8 layers, ~30M parameters)} x {full, LoRA r 16} x {ours, TRL GRPO}. Prints a table
and writes JSON to benchmarks/results/ares_ppo_iteration.json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
PROMPTS, SAMPLES, NEW_TOKENS = 8, 4, 48


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


def run_ours(path: Path, lora: bool, iterations: int) -> dict:
    from align.data import load_sample_scienceqa
    from align.generate import SamplingConfig
    from align.models import LoraSettings, load_policy
    from align.trainers.ppo import PPOTrainer
    from align.trainers.ppo_config import PPOConfig
    from align.trainers.reward_fns import SequenceReward

    policy = load_policy(
        str(path), lora=LoraSettings(r=16, alpha=32, dropout=0.0) if lora else None, dtype="float32"
    )
    problems = load_sample_scienceqa("train")
    cfg = PPOConfig(
        output_dir=tempfile.mkdtemp(),
        prompts_per_iteration=PROMPTS,
        sampling=SamplingConfig(num_samples=SAMPLES, max_new_tokens=NEW_TOKENS, batch_size=PROMPTS),
        ppo_epochs=1,
        minibatch_size=PROMPTS * SAMPLES,
        save_every=0,
        learning_rate=1e-5,
    )
    trainer = PPOTrainer(policy, SequenceReward(lambda p, t: reward_text(t)), cfg, problems)
    trainer.step()  # warm-up
    times, parts = [], {"generation": 0.0, "reward": 0.0, "update": 0.0}
    for _ in range(iterations):
        t0 = time.perf_counter()
        m = trainer.step()
        times.append(time.perf_counter() - t0)
        parts["generation"] += m["time/generation_s"]
        parts["reward"] += m["time/reward_s"]
        parts["update"] += m["time/update_s"]
    total = sum(times)
    return {
        "samples_per_s": PROMPTS * SAMPLES * iterations / total,
        "s_per_iteration": total / iterations,
        **{f"share_{k}": v / total for k, v in parts.items()},
    }


def run_grpo(path: Path, lora: bool, iterations: int) -> dict:
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer

    from align.data import build_prompt, load_sample_scienceqa

    tok = AutoTokenizer.from_pretrained(path)
    tok.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(path)
    prompts = [build_prompt(p) for p in load_sample_scienceqa("train")] * 4
    peft_config = None
    if lora:
        from peft import LoraConfig

        peft_config = LoraConfig(
            r=16, lora_alpha=32, lora_dropout=0.0, target_modules="all-linear", task_type="CAUSAL_LM"
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

    from transformers import TrainerCallback

    class Timer(TrainerCallback):
        def on_step_begin(self, *a, **k):
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
    timed = step_times[1:]  # first step is warm-up
    return {
        "samples_per_s": PROMPTS * SAMPLES * len(timed) / sum(timed),
        "s_per_iteration": sum(timed) / len(timed),
    }


def child(args: argparse.Namespace) -> None:
    import torch

    torch.manual_seed(0)
    path = build(args.size, Path(tempfile.mkdtemp()) / args.size)
    fn = run_ours if args.impl == "ours" else run_grpo
    result = fn(path, args.lora, args.iterations)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    from transformers import AutoConfig

    c = AutoConfig.from_pretrained(path)
    result["params_m"] = (
        c.vocab_size * c.hidden_size
        + c.num_hidden_layers * (4 * c.hidden_size * c.hidden_size + 3 * c.hidden_size * c.intermediate_size)
    ) / 1e6
    print("RESULT " + json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--iterations", type=int, default=3)
    parser.add_argument("--sizes", default="tiny,small")
    parser.add_argument("--child", action="store_true")
    parser.add_argument("--size", default="tiny")
    parser.add_argument("--impl", default="ours")
    parser.add_argument("--lora", action="store_true")
    parser.add_argument("--out", default="benchmarks/results/ares_ppo_iteration.json")
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    rows = []
    for size in args.sizes.split(","):
        for lora in (False, True):
            for impl in ("ours", "trl-grpo"):
                cmd = [
                    sys.executable,
                    __file__,
                    "--child",
                    "--size",
                    size,
                    "--impl",
                    impl,
                    "--iterations",
                    str(args.iterations),
                ]
                if lora:
                    cmd.append("--lora")
                proc = subprocess.run(
                    cmd, capture_output=True, text=True, env={**os.environ, "TOKENIZERS_PARALLELISM": "false"}
                )
                line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
                if line is None:
                    row = {"size": size, "lora": lora, "impl": impl, "error": proc.stderr[-600:]}
                else:
                    row = {"size": size, "lora": lora, "impl": impl, **json.loads(line[7:])}
                rows.append(row)
                print(json.dumps(row), flush=True)
    out = ROOT / args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
