"""ARES on A-OKVQA (Byun et al., EMNLP 2024): rounds of PPO with sentence-level teacher feedback, then SFT on
the teacher's corrections, in one resumable run folder. With no arguments: the offline CPU demo on our
A-OKVQA-format samples (a tiny LLaVA built here, the offline reference teacher; about a minute).

  python recipes/ares_aokvqa.py
  accelerate launch --config_file recipes/configs/accelerate/single_gpu.yaml recipes/ares_aokvqa.py \\
      --config aokvqa_single_gpu_lora --set ares.data_root=/data/aokvqa --set ares.image_root=/data/coco
"""

import sys
from dataclasses import replace

import ares_scienceqa

RECIPE = replace(
    ares_scienceqa.RECIPE,
    prog="ares_aokvqa.py",
    doc=__doc__,
    default_config="ares_aokvqa_demo",
    configs={
        "ares_aokvqa_demo": "the offline CPU demo (tiny LLaVA, our A-OKVQA-format samples, reference teacher)",
        "aokvqa_single_gpu_lora": "one GPU, Qwen2-VL-2B with LoRA, the paper's PPO settings",
    },
)


def load_config(config: str, overrides: list[str]) -> dict:
    return ares_scienceqa.load_config(config, overrides, RECIPE)


def main(argv: list[str] | None = None) -> int:
    return ares_scienceqa.main(argv, recipe=RECIPE)


if __name__ == "__main__":
    sys.exit(main())
