"""Evaluate rationale models: accuracy by group, judge win rate, rationale quality; writes a report.

python recipes/evaluate.py                       # compares the ARES demo's baseline and final stages
python recipes/evaluate.py --config evaluate_demo --set eval.judge=openai:gpt-4o --set eval.models=a=PATH,b=PATH
"""

from pathlib import Path

from align.eval.evaluate import EvalConfig, evaluate
from align.recipe_config import load_sections, recipe_arguments

CONFIG_DIR = Path(__file__).resolve().parent / "configs"


def main() -> None:
    args = recipe_arguments(__doc__, "evaluate_demo")
    cfg = load_sections(args.config, {"eval": EvalConfig}, args.set, CONFIG_DIR)["eval"]
    evaluate(cfg)
    print(f"[evaluate] report: {cfg.output_dir}/report.md")


if __name__ == "__main__":
    main()
