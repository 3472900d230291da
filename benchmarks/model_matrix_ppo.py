"""One PPO iteration across the model matrix: every tiny family (Llama, Qwen2, GPT-2, LLaVA, Qwen2-VL,
Qwen2.5-VL, Idefics3), full fine-tuning and LoRA, in a single process and under DeepSpeed ZeRO-2 (one
process, CPU). Prints and writes peak memory (RSS) and samples/s; then the GPU memory the shipped configs
need, computed from the real models' parameter counts (models built on the meta device from their configs).

    python benchmarks/model_matrix_ppo.py --iterations 3
    python benchmarks/model_matrix_ppo.py --gpu-estimate-only

Each configuration runs in its own process (clean peak memory). ZeRO-2 runs go through
`accelerate launch --config_file recipes/configs/accelerate/deepspeed_zero2.yaml` with one process and full
precision (DeepSpeed needs `DS_BUILD_OPS=0 pip install --no-build-isolation deepspeed`).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
PROMPTS, SAMPLES, NEW_TOKENS = 8, 4, 32
FAMILIES = ("llama", "qwen2", "gpt2", "llava", "qwen2_vl", "qwen2_5_vl", "idefics3")


def child(args: argparse.Namespace) -> None:
    import torch

    from align.data import load_sample_scienceqa
    from align.generate import SamplingConfig
    from align.models import LoraSettings, load_policy
    from align.models.tiny_zoo import build_tiny_model
    from align.trainers.ppo import PPOTrainer
    from align.trainers.ppo_config import PPOConfig
    from align.trainers.reward_fns import SequenceReward

    torch.set_num_threads(1)
    torch.manual_seed(0)
    path = build_tiny_model(args.family, Path(tempfile.mkdtemp()) / args.family)
    lora = LoraSettings(r=16, alpha=32, dropout=0.0) if args.lora else None
    policy = load_policy(str(path), lora=lora, dtype="float32")
    samples = load_sample_scienceqa("train")
    problems = [p for p in samples if p.image][:4] + [p for p in samples if not p.image][:4]
    config = PPOConfig(
        output_dir=tempfile.mkdtemp(),
        prompts_per_iteration=PROMPTS,
        sampling=SamplingConfig(num_samples=SAMPLES, max_new_tokens=NEW_TOKENS, batch_size=PROMPTS),
        ppo_epochs=1,
        minibatch_size=16,
        learning_rate=1e-5,
        save_every=0,
    )
    trainer = PPOTrainer(policy, SequenceReward(lambda p, t: float(len(t.split()) > 8)), config, problems)
    trainer.step()  # warm-up
    before = _rss_mb("VmRSS")
    measured = _reset_peak_rss()
    times, parts = [], {"generation": 0.0, "reward": 0.0, "update": 0.0}
    for _ in range(args.iterations):
        t0 = time.perf_counter()
        metrics = trainer.step()
        times.append(time.perf_counter() - t0)
        for k in parts:
            parts[k] += metrics.get(f"time/{k}_s", 0.0)
    total = sum(times)
    result = {
        "samples_per_s": PROMPTS * SAMPLES * args.iterations / total,
        "s_per_iteration": total / args.iterations,
        **{f"share_{k}": v / total for k, v in parts.items()},
        "params_m": sum(p.numel() for p in policy.model.parameters()) / 1e6,
        "trainable_m": sum(p.numel() for p in policy.model.parameters() if p.requires_grad) / 1e6,
        "deepspeed": trainer.accelerator.distributed_type.value,
        "rss_before_iterations_mb": before,
        "peak_rss_iterations_mb": _rss_mb("VmHWM") if measured else None,
        "peak_rss_process_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    print("RESULT " + json.dumps(result), flush=True)


def _rss_mb(field: str) -> float:
    """A memory figure of this process from /proc/self/status (VmRSS: now, VmHWM: peak), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _reset_peak_rss() -> bool:
    """Reset the process's peak RSS (Linux: write 5 to /proc/self/clear_refs), so that VmHWM is the peak of
    the timed iterations alone, not of imports and model building."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _zero2_config(tmp: Path) -> Path:
    import yaml

    config = yaml.safe_load((ROOT / "recipes/configs/accelerate/deepspeed_zero2.yaml").read_text())
    config.update(num_processes=1, mixed_precision="no")
    path = tmp / "zero2.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_one(family: str, lora: bool, launch: str, iterations: int, tmp: Path) -> dict:
    script = [__file__, "--child", "--family", family, "--iterations", str(iterations)] + (["--lora"] * lora)
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}
    if launch == "single":
        cmd = [sys.executable, *script]
    else:
        cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(_zero2_config(tmp))]
        cmd += ["--main_process_port", str(_free_port()), *script]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=str(ROOT))
    line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
    row = {"family": family, "weights": "LoRA r16" if lora else "full", "launch": launch}
    return {**row, **json.loads(line[7:])} if line else {**row, "error": proc.stderr[-800:]}


# --- GPU memory of the shipped configs, from parameter counts ---------------------------------------------------
def _real_configs() -> dict:
    """The configs of the models our shipped recipes name (values from their published config.json)."""
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig, Qwen2VLConfig

    qwen2vl_2b = Qwen2VLConfig(
        text_config={
            "vocab_size": 151936,
            "hidden_size": 1536,
            "intermediate_size": 8960,
            "num_hidden_layers": 28,
            "num_attention_heads": 12,
            "num_key_value_heads": 2,
            "tie_word_embeddings": True,
            "rope_parameters": {"rope_type": "default", "rope_theta": 1e6, "mrope_section": [16, 24, 24]},
        },
        vision_config={"depth": 32, "embed_dim": 1280, "hidden_size": 1536, "mlp_ratio": 4, "num_heads": 16},
        tie_word_embeddings=True,
    )
    llava_7b = LlavaConfig(
        vision_config=CLIPVisionConfig(
            hidden_size=1024,
            intermediate_size=4096,
            num_hidden_layers=24,
            num_attention_heads=16,
            image_size=336,
            patch_size=14,
            projection_dim=768,
        ),
        text_config=LlamaConfig(
            vocab_size=32064,
            hidden_size=4096,
            intermediate_size=11008,
            num_hidden_layers=32,
            num_attention_heads=32,
            num_key_value_heads=32,
        ),
        image_seq_length=576,
    )
    return {"Qwen/Qwen2-VL-2B-Instruct": qwen2vl_2b, "llava-hf/llava-1.5-7b-hf": llava_7b}


def count_parameters(config, lora_r: int = 64) -> tuple[int, int]:
    """(all parameters, LoRA r parameters on every linear layer) of a model built on the meta device."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForImageTextToText

    with torch.device("meta"):
        model = AutoModelForImageTextToText.from_config(config)
    total = sum(p.numel() for p in model.parameters())
    peft = get_peft_model(model, LoraConfig(r=lora_r, lora_alpha=2 * lora_r, target_modules="all-linear"))
    lora = sum(p.numel() for n, p in peft.named_parameters() if "lora_" in n)
    return total, lora


def gpu_estimate(gpus: int = 8) -> list[dict]:
    """Weights, gradients, optimizer states and the frozen reference of a PPO stage, per GPU, under the shipped
    launch configs as they run (bf16); activations, the KV cache of generation and the CUDA context come on top.

    - one GPU, bf16 autocast (`single_gpu.yaml`; `multi_gpu.yaml`'s DDP holds the same per GPU): weights stay in
      the dtype they were loaded in. LoRA on a bf16 base (`ares.dtype: bfloat16`, as the shipped configs load
      it): base 2 B/param, adapters in float32 with their gradient and AdamW moments 16 B/param, the frozen
      reference adapter 4 B/param; a 4-bit NF4 base ~0.5625 B/param. Full fine-tuning loaded in float32 (a
      bf16-loaded full fine-tune would update bf16 weights with bf16 AdamW states): 16 B/param trained plus a
      float32 frozen reference copy (4 B/param: the reference takes the policy's dtype).
    - DeepSpeed's bf16 engine (`deepspeed_zero{2,3}.yaml`), the ZeRO paper's accounting: bf16 weights 2 B and bf16
      gradients 2 B per trainable parameter, float32 master weights and AdamW moments 12 B; ZeRO-2 shards the
      gradients and the 12 B over the GPUs, ZeRO-3 the weights too; frozen weights (the LoRA base, the reference)
      are cast to bf16 (2 B/param), sharded only by ZeRO-3 (the full reference as an inference engine). The
      4-bit base is not combined with DeepSpeed here."""
    gib = 1024**3
    n = gpus
    rows = []
    for name, config in _real_configs().items():
        total, lora = count_parameters(config)
        for setting in ("LoRA r64", "LoRA r64 + 4-bit base", "full"):
            if setting == "full":
                autocast = 16 * total + 4 * total
                zero2 = 2 * total + 2 * total + (2 + 12) * total / n
                zero3 = (2 + 2 + 12) * total / n + 2 * total / n
            else:
                base = (0.5625 if "4-bit" in setting else 2) * total
                autocast = base + 16 * lora + 4 * lora
                zero2 = None if "4-bit" in setting else 2 * total + 2 * lora + 2 * lora + (2 + 12) * lora / n
                zero3 = None if "4-bit" in setting else (2 * total + (2 + 2 + 12) * lora + 2 * lora) / n
            rows.append(
                {
                    "model": name,
                    "params_b": total / 1e9,
                    "lora_params_m": lora / 1e6 if setting != "full" else None,
                    "setting": setting,
                    "one_gpu_autocast_gib": autocast / gib,
                    f"zero2_{n}gpu_per_gpu_gib": zero2 / gib if zero2 is not None else None,
                    f"zero3_{n}gpu_per_gpu_gib": zero3 / gib if zero3 is not None else None,
                }
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--iterations", type=int, default=3)
    parser.add_argument("--families", default=",".join(FAMILIES))
    parser.add_argument("--launches", default="single,zero2")
    parser.add_argument("--child", action="store_true")
    parser.add_argument("--family", default="llama")
    parser.add_argument("--lora", action="store_true")
    parser.add_argument("--gpu-estimate-only", action="store_true")
    parser.add_argument("--out", default="benchmarks/results/model_matrix_ppo.json")
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    estimate = gpu_estimate()
    for row in estimate:
        print(json.dumps(row), flush=True)
    rows = []
    if not args.gpu_estimate_only:
        tmp = Path(tempfile.mkdtemp())
        for family in args.families.split(","):
            for lora in (False, True):
                for launch in args.launches.split(","):
                    rows.append(run_one(family, lora, launch, args.iterations, tmp))
                    print(json.dumps(rows[-1]), flush=True)
    out = ROOT / args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    if args.gpu_estimate_only and out.is_file():  # keep the CPU figures the file already holds
        rows = json.loads(out.read_text()).get("cpu", [])
    out.write_text(json.dumps({"cpu": rows, "gpu_estimate": estimate}, indent=1))


if __name__ == "__main__":
    main()
