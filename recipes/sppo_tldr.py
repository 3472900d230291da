"""SPPO/PPO on TL;DR summarisation (Byun & Perrault, 2025) in three resumable stages: SFT (TRL SFTTrainer), a
reward model (TRL RewardTrainer), then PPO or SPPO against it. With no arguments: the offline CPU demo (a tiny
GPT-2 built here, our sample posts and preference pairs, the offline lexical judge).

python recipes/sppo_tldr.py
python recipes/sppo_tldr.py --set ppo.policy_loss=sppo
accelerate launch recipes/sppo_tldr.py --config sppo_tldr_qwen --set tldr.judge=openai:gpt-4o
"""

import sys
from pathlib import Path

from align.recipe_config import load_sections, recipe_arguments
from align.rlhf.config import TldrConfig
from align.rlhf.tldr import TldrRun
from align.rlhf.training import TrainSettings
from align.trainers.hardware import check_hardware
from align.trainers.ppo_config import PPOConfig
from align.user_errors import run_command

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
SECTIONS = {"tldr": TldrConfig, "ppo": PPOConfig, "sft": TrainSettings, "reward": TrainSettings}


def load_config(config: str, overrides: list[str]) -> dict:
    """The recipe's sections from a YAML config (a path or a name under recipes/configs) and overrides."""
    return load_sections(config, SECTIONS, overrides, CONFIG_DIR)


def main(argv: list[str] | None = None) -> None:
    args = recipe_arguments(__doc__, "sppo_tldr_demo", argv)
    cfg = load_config(args.config, args.set)
    check_hardware(cfg)  # fp16 or 4/8-bit this machine cannot run: exit 2 before any work
    run = TldrRun(cfg["tldr"], cfg["ppo"], cfg["sft"], cfg["reward"])
    run.run()
    if run.main:
        print(f"[sppo-tldr] report: {run.root / 'report.md'}")


if __name__ == "__main__":
    sys.exit(run_command(main, "sppo_tldr"))
