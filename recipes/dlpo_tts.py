"""DLPO for text-to-speech (Chen et al., 2024): pretrain a WaveGrad 2-style model on an LJSpeech-format corpus,
fine-tune it with DLPO and the baselines (RWR, DDPO, DPOK, KL-in-reward) against a MOS reward, and report MOS,
WER and speed, in one resumable run folder. With no arguments: the CPU demo (our eSpeak NG sample corpus,
DNSMOS reward, pocketsphinx WER), from any working directory.

  python recipes/dlpo_tts.py
  python recipes/dlpo_tts.py --set run.objectives=dlpo,ddpo --set run.seeds=0,1
  accelerate launch --config_file recipes/configs/accelerate/single_gpu.yaml recipes/dlpo_tts.py \\
      --config dlpo_tts_paper --set run.data_dir=/data/LJSpeech-1.1
"""

import os
import sys
from pathlib import Path

from align.recipe_cli import Recipe, run_recipe

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
RECIPE = Recipe(
    prog="dlpo_tts.py",
    doc=__doc__,
    default_config="dlpo_tts_demo",
    configs={
        "dlpo_tts_demo": "the CPU demo: a tiny model at 8 kHz on our eSpeak NG sample, DNSMOS, pocketsphinx",
        "dlpo_tts_paper": "the paper's settings on LJSpeech-1.1 (GPU): T = 1000, UTMOS reward, Whisper WER",
    },
    sections={
        "run": "corpus, MOS reward, ASR, objectives, seeds, RL iterations, evaluation, run folder",
        "model": "the WaveGrad 2-style model: sample rate, widths, diffusion schedule (WaveGrad2Config)",
        "pretrain": "pretraining on the corpus: steps, batch, learning rate (TTSPretrainConfig)",
        "rl": "RL fine-tuning: DLPO alpha/beta, sampling steps, batch, learning rate (DiffusionRLConfig)",
    },
    example_set="rl.learning_rate=1e-5",
    config_dir=CONFIG_DIR,
)


def load_config(config: str, overrides: list[str]) -> dict:
    """The recipe's sections from a YAML config (a path or a name under recipes/configs) and overrides."""
    from align.diffusion.tts_run import SECTIONS
    from align.recipe_config import load_sections

    return load_sections(config, SECTIONS, overrides, CONFIG_DIR, shipped=RECIPE.configs)


def work(args, hooks) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from align.quiet_libraries import quiet_libraries

    quiet_libraries()
    cfg = load_config(args.config, args.set)
    from align.trainers.hardware import check_hardware

    check_hardware(cfg)  # fp16 or 4/8-bit this machine cannot run: exit 2 before any work
    from align.diffusion.tts_run import DLPOTTSRun, report

    run = DLPOTTSRun(
        cfg["run"], cfg["model"], cfg["pretrain"], cfg["rl"], hooks=hooks, overwrite=args.overwrite
    )
    results = run.execute()
    if run.state.is_main_process:
        print(report(results))
        print(f"[dlpo] results: {run.results_path}, report.md, audio/ in {run.out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_recipe(RECIPE, work, argv)


if __name__ == "__main__":
    sys.exit(main())
