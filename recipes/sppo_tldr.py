"""SPPO/PPO on TL;DR summarisation (Byun & Perrault, 2025) in three resumable stages: SFT (TRL SFTTrainer), a
reward model (TRL RewardTrainer), then PPO or SPPO against it for every seed, with ROUGE and a judge's win rate
against the human summaries. With no arguments: the offline CPU demo (a tiny GPT-2 built here, our sample posts
and preference pairs, the offline lexical judge; a few minutes).

  python recipes/sppo_tldr.py
  python recipes/sppo_tldr.py --set ppo.policy_loss=sppo --set tldr.output_dir=runs/sppo-tldr-demo-sppo
  accelerate launch --config_file recipes/configs/accelerate/single_gpu.yaml recipes/sppo_tldr.py \\
      --config sppo_tldr_qwen --set tldr.judge=openai:gpt-4o
"""

import sys
from pathlib import Path

from align.recipe_cli import Recipe, run_recipe

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
RECIPE = Recipe(
    prog="sppo_tldr.py",
    doc=__doc__,
    default_config="sppo_tldr_demo",
    configs={
        "sppo_tldr_demo": "the offline CPU demo (tiny GPT-2, our sample posts and pairs, lexical judge)",
        "sppo_tldr_qwen": "one GPU: Qwen2.5-1.5B-Instruct with LoRA, the paper's PPO settings",
        "sppo_tldr_gptj": "the paper's setting: GPT-J 6B in 4 bit with LoRA (GPU, bitsandbytes)",
    },
    sections={
        "tldr": "data, base/SFT/reward models, prompts, iterations, seeds, judge, evaluation, run folder",
        "ppo": "the RL stage: PPO or SPPO (policy_loss, sppo_alpha/beta/z), sampling (PPOConfig)",
        "sft": "stage 1, supervised fine-tuning on post/summary pairs (TrainSettings)",
        "reward": "stage 2, the reward model on preference pairs (TrainSettings)",
    },
    example_set="ppo.policy_loss=sppo",
    config_dir=CONFIG_DIR,
)


def sections() -> dict:
    from align.rlhf.config import TldrConfig
    from align.rlhf.training import TrainSettings
    from align.trainers.ppo_config import PPOConfig

    return {"tldr": TldrConfig, "ppo": PPOConfig, "sft": TrainSettings, "reward": TrainSettings}


def load_config(config: str, overrides: list[str]) -> dict:
    """The recipe's sections from a YAML config (a path or a name under recipes/configs) and overrides."""
    from align.recipe_config import load_sections

    return load_sections(config, sections(), overrides, CONFIG_DIR, shipped=RECIPE.configs)


def work(args, hooks) -> int:
    from align.quiet_libraries import quiet_libraries

    quiet_libraries()
    cfg = load_config(args.config, args.set)
    from align.trainers.hardware import check_hardware

    check_hardware(cfg)  # fp16 or 4/8-bit this machine cannot run: exit 2 before any work
    from align.rlhf.tldr import TldrRun

    run = TldrRun(cfg["tldr"], cfg["ppo"], cfg["sft"], cfg["reward"], hooks=hooks, overwrite=args.overwrite)
    run.run()
    if run.main:
        print(f"[sppo-tldr] report: {run.root / 'report.md'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_recipe(RECIPE, work, argv)


if __name__ == "__main__":
    sys.exit(main())
