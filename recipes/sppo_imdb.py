"""SPPO/PPO on IMDB positive sentiment (Byun & Perrault, 2025). With no arguments: the offline CPU demo (a tiny
GPT-2 and a tiny DistilBERT classifier trained here on our sample reviews).

python recipes/sppo_imdb.py
python recipes/sppo_imdb.py --set ppo.policy_loss=sppo
accelerate launch recipes/sppo_imdb.py --config sppo_imdb_gpt2 --set ppo.policy_loss=sppo --set imdb.output_dir=runs/imdb-sppo
"""

import sys
from pathlib import Path

from align.recipe_config import load_sections, recipe_arguments
from align.rlhf.config import ImdbConfig
from align.rlhf.imdb import ImdbRun
from align.rlhf.training import TrainSettings
from align.trainers.hardware import check_hardware
from align.trainers.ppo_config import PPOConfig
from align.user_errors import run_command

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
SECTIONS = {"imdb": ImdbConfig, "ppo": PPOConfig, "lm": TrainSettings, "classifier": TrainSettings}


def load_config(config: str, overrides: list[str]) -> dict:
    """The recipe's sections from a YAML config (a path or a name under recipes/configs) and overrides."""
    return load_sections(config, SECTIONS, overrides, CONFIG_DIR)


def main(argv: list[str] | None = None) -> None:
    args = recipe_arguments(__doc__, "sppo_imdb_demo", argv)
    cfg = load_config(args.config, args.set)
    check_hardware(cfg)  # fp16 or 4/8-bit this machine cannot run: exit 2 before any work
    run = ImdbRun(cfg["imdb"], cfg["ppo"], cfg["lm"], cfg["classifier"])
    run.run()
    if run.main:
        print(f"[sppo-imdb] report: {run.root / 'report.md'}")


if __name__ == "__main__":
    sys.exit(run_command(main, "sppo_imdb"))
