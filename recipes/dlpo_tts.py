"""DLPO for text-to-speech: pretrain a WaveGrad 2-style model, fine-tune it with DLPO and the baselines (RWR,
DDPO, DPOK, KL-in-reward) against a MOS reward, and report MOS, WER and speed.

python recipes/dlpo_tts.py                       # the CPU demo (our eSpeak NG sample, DNSMOS, pocketsphinx)
accelerate launch recipes/dlpo_tts.py --config dlpo_tts_paper --set run.data_dir=/data/LJSpeech-1.1
"""

import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from align.diffusion.tts_run import SECTIONS, DLPOTTSRun, report  # noqa: E402
from align.recipe_config import load_sections, recipe_arguments  # noqa: E402
from align.trainers.distributed import is_main_process  # noqa: E402
from align.trainers.hardware import check_hardware  # noqa: E402
from align.user_errors import run_command  # noqa: E402

CONFIG_DIR = Path(__file__).resolve().parent / "configs"


def load_config(config: str, overrides: list[str]) -> dict:
    """The recipe's sections from a YAML config (a path or a name under recipes/configs) and overrides."""
    return load_sections(config, SECTIONS, overrides, CONFIG_DIR)


def main(default_config: str = "dlpo_tts_demo") -> None:
    args = recipe_arguments(__doc__, default_config)
    cfg = load_config(args.config, args.set)
    check_hardware(cfg)  # fp16 or 4/8-bit this machine cannot run: exit 2 before any work
    results = DLPOTTSRun(cfg["run"], cfg["model"], cfg["pretrain"], cfg["rl"]).execute()
    if is_main_process():
        print(report(results))
        print(f"[dlpo] results: {cfg['run'].output_dir}/results.json, report.md, audio/")


if __name__ == "__main__":
    sys.exit(run_command(main, "dlpo_tts"))
