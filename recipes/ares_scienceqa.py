"""ARES on ScienceQA (Byun et al., EMNLP 2024): rounds of PPO with sentence-level teacher feedback, then SFT on
the teacher's corrections, in one resumable run folder. With no arguments: the offline CPU demo (a tiny LLaVA
built here, our ScienceQA-format samples, the offline reference teacher; about a minute).

  python recipes/ares_scienceqa.py
  python recipes/ares_scienceqa.py --set ppo.learning_rate=1e-5 --set ares.output_dir=runs/ares-lr1e-5
  accelerate launch --config_file recipes/configs/accelerate/single_gpu.yaml recipes/ares_scienceqa.py \\
      --config single_gpu_lora --set ares.data_root=/data/scienceqa --set ares.teacher=openai:gpt-4o
"""

import sys
from pathlib import Path

from align.recipe_cli import Recipe, run_recipe

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
SECTION_HELP = {
    "ares": "data, model, LoRA, teacher, rounds, RL iterations, run folder (AresConfig)",
    "ppo": "the RL stage: PPO/SPPO hyperparameters and sampling (PPOConfig)",
    "sft": "the correction SFT stage of each round (SFTConfig)",
    "baseline_sft": "optional SFT on the gold rationales before round 1 (SFTConfig)",
}
RECIPE = Recipe(
    prog="ares_scienceqa.py",
    doc=__doc__,
    default_config="ares_scienceqa_demo",
    configs={
        "ares_scienceqa_demo": "the offline CPU demo (tiny LLaVA, our samples, reference teacher)",
        "single_gpu_lora": "one GPU, Qwen2-VL-2B with LoRA, the paper's PPO settings",
        "multi_gpu": "the same on several GPUs (DDP or DeepSpeed ZeRO-2/3 accelerate configs)",
    },
    sections=SECTION_HELP,
    example_set="ppo.learning_rate=1e-5",
    config_dir=CONFIG_DIR,
)


def sections() -> dict:
    """The config sections' dataclasses (imported when work starts: they bring torch)."""
    from align.ares import AresConfig
    from align.trainers.ppo_config import PPOConfig
    from align.trainers.sft import SFTConfig

    return {"ares": AresConfig, "ppo": PPOConfig, "sft": SFTConfig, "baseline_sft": SFTConfig}


def load_config(config: str, overrides: list[str], recipe: Recipe = RECIPE) -> dict:
    """The recipe's sections from a YAML config (a path or a name under recipes/configs) and overrides."""
    from align.recipe_config import load_sections

    return load_sections(
        config, sections(), overrides, recipe.config_dir, optional=("baseline_sft",), shipped=recipe.configs
    )


def work(args, hooks, recipe: Recipe = RECIPE) -> int:
    from align.quiet_libraries import quiet_libraries

    quiet_libraries()
    cfg = load_config(args.config, args.set, recipe)
    from align.ares import AresRun
    from align.trainers.hardware import check_hardware

    check_hardware(cfg)  # fp16 or 4/8-bit this machine cannot run: exit 2 before any work
    run = AresRun(
        cfg["ares"], cfg["ppo"], cfg["sft"], cfg["baseline_sft"], hooks=hooks, overwrite=args.overwrite
    )
    run.run()
    if run.main:
        print(f"[ares] report: {run.out / 'report.md'}", flush=True)
    return 0


def main(argv: list[str] | None = None, recipe: Recipe = RECIPE) -> int:
    return run_recipe(recipe, lambda args, hooks: work(args, hooks, recipe), argv)


if __name__ == "__main__":
    sys.exit(main())
