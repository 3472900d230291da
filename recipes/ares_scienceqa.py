"""ARES on ScienceQA. With no arguments: the offline demo (tiny VLM, our sample data, reference teacher).

accelerate launch recipes/ares_scienceqa.py
accelerate launch recipes/ares_scienceqa.py --config single_gpu_lora --set ares.teacher=openai:gpt-4o
"""

import sys
from pathlib import Path

from align.ares import AresConfig, AresRun
from align.recipe_config import load_sections, recipe_arguments
from align.trainers.hardware import check_hardware
from align.trainers.ppo_config import PPOConfig
from align.trainers.sft import SFTConfig
from align.user_errors import run_command

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
SECTIONS = {"ares": AresConfig, "ppo": PPOConfig, "sft": SFTConfig, "baseline_sft": SFTConfig}


def load_config(config: str, overrides: list[str]) -> dict:
    """The recipe's sections from a YAML config (a path or a name under recipes/configs) and overrides."""
    return load_sections(config, SECTIONS, overrides, CONFIG_DIR, optional=("baseline_sft",))


def main(default_config: str = "ares_scienceqa_demo") -> None:
    args = recipe_arguments(__doc__, default_config)
    cfg = load_config(args.config, args.set)
    check_hardware(cfg)  # fp16 or 4/8-bit this machine cannot run: exit 2 before any work
    run = AresRun(cfg["ares"], cfg["ppo"], cfg["sft"], cfg["baseline_sft"])
    run.run()
    if run.main:
        print(f"[ares] report: {run.out / 'report.md'}", flush=True)


if __name__ == "__main__":
    sys.exit(run_command(main, "ares_scienceqa"))
