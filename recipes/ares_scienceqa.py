"""ARES on ScienceQA. With no arguments: the offline demo (tiny VLM, our sample data, reference teacher).

accelerate launch recipes/ares_scienceqa.py
accelerate launch recipes/ares_scienceqa.py --config single_gpu_lora --set ares.teacher=openai:gpt-4o
"""

from align.ares import AresConfig, AresRun
from align.recipe_config import load_sections, recipe_arguments
from align.trainers.ppo_config import PPOConfig
from align.trainers.sft import SFTConfig

SECTIONS = {"ares": AresConfig, "ppo": PPOConfig, "sft": SFTConfig, "baseline_sft": SFTConfig}


def main(default_config: str = "ares_scienceqa_demo") -> None:
    args = recipe_arguments(__doc__, default_config)
    cfg = load_sections(args.config, SECTIONS, args.set)
    run = AresRun(cfg["ares"], cfg["ppo"], cfg["sft"], cfg["baseline_sft"])
    run.run()
    print(f"[ares] report: {run.out / 'report.md'}")


if __name__ == "__main__":
    main()
