"""SPPO/PPO on IMDB positive sentiment (Byun & Perrault, 2025): a GPT-2 policy continues review prefixes and is
rewarded by a sentiment classifier's positive logit, over several seeds, in one resumable run folder. With no
arguments: the offline CPU demo (a tiny GPT-2 and a tiny DistilBERT classifier trained here on our sample
reviews; a few minutes).

  python recipes/sppo_imdb.py
  python recipes/sppo_imdb.py --set ppo.policy_loss=sppo --set imdb.output_dir=runs/sppo-imdb-demo-sppo
  accelerate launch --config_file recipes/configs/accelerate/single_gpu.yaml recipes/sppo_imdb.py \\
      --config sppo_imdb_gpt2 --set ppo.policy_loss=sppo --set imdb.output_dir=runs/imdb-sppo
"""

import sys
from pathlib import Path

from align.recipe_cli import Recipe, run_recipe

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
RECIPE = Recipe(
    prog="sppo_imdb.py",
    doc=__doc__,
    default_config="sppo_imdb_demo",
    configs={
        "sppo_imdb_demo": "the offline CPU demo (tiny GPT-2 and classifier trained here, our sample reviews)",
        "sppo_imdb_gpt2": "the paper's setting: lvwerra/gpt2-imdb, lvwerra/distilbert-imdb, 60 iterations, 5 seeds",
    },
    sections={
        "imdb": "data, policy and classifier, reward, prompts, iterations, seeds, evaluation, run folder",
        "ppo": "the RL stage: PPO or SPPO (policy_loss, sppo_alpha/beta/z), sampling (PPOConfig)",
        "lm": "the demo's language-model stage (tiny GPT-2 trained on reviews; TrainSettings)",
        "classifier": "the demo's sentiment-classifier stage (tiny DistilBERT; TrainSettings)",
    },
    example_set="ppo.policy_loss=sppo",
    config_dir=CONFIG_DIR,
)


def sections() -> dict:
    from align.rlhf.config import ImdbConfig
    from align.rlhf.training import TrainSettings
    from align.trainers.ppo_config import PPOConfig

    return {"imdb": ImdbConfig, "ppo": PPOConfig, "lm": TrainSettings, "classifier": TrainSettings}


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
    from align.rlhf.imdb import ImdbRun

    run = ImdbRun(
        cfg["imdb"], cfg["ppo"], cfg["lm"], cfg["classifier"], hooks=hooks, overwrite=args.overwrite
    )
    run.run()
    if run.main:
        print(f"[sppo-imdb] report: {run.root / 'report.md'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_recipe(RECIPE, work, argv)


if __name__ == "__main__":
    sys.exit(main())
