"""Evaluate rationale models (e.g. the stages of an ARES run): answer accuracy by group, the judge's win rate
against the first model, rationale quality; writes report.json, report.md and PNGs to a resumable folder.

  python recipes/evaluate.py                       # after the ARES demo: its baseline SFT stage vs its final stage
  python recipes/evaluate.py --set eval.judge=openai:gpt-4o --set eval.models=base=PATH,ares=PATH \\
      --set eval.output_dir=runs/eval-ares
"""

import sys
from pathlib import Path

from align.recipe_cli import Recipe, run_recipe

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
RECIPE = Recipe(
    prog="evaluate.py",
    doc=__doc__,
    default_config="evaluate_demo",
    configs={
        "evaluate_demo": "after the ARES demo: its baseline SFT stage vs its final stage, offline judge"
    },
    sections={"eval": "models (name=path,...), dataset and split, judge, ARES run folder, output folder"},
    example_set="eval.judge=openai:gpt-4o",
    config_dir=CONFIG_DIR,
)


def load_config(config: str, overrides: list[str]):
    from align.eval.evaluate import EvalConfig
    from align.recipe_config import load_sections

    return load_sections(config, {"eval": EvalConfig}, overrides, CONFIG_DIR, shipped=RECIPE.configs)["eval"]


def work(args, hooks) -> int:
    from align.quiet_libraries import quiet_libraries

    quiet_libraries()
    cfg = load_config(args.config, args.set)
    from align.eval.evaluate import evaluate

    evaluate(cfg, hooks=hooks, overwrite=args.overwrite)
    print(f"[evaluate] report: {cfg.output_dir}/report.md")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_recipe(RECIPE, work, argv)


if __name__ == "__main__":
    sys.exit(main())
