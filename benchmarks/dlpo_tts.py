"""DLPO vs its diffusion-loss-only control, RWR, DDPO, DPOK, KL-in-reward and the pretrained model on the CPU
demo setup, 3 seeds, every model evaluated on the same 32 held-out samples (same noise): paired MOS differences.

OMP_NUM_THREADS=1 nice -n 10 python benchmarks/dlpo_tts.py            # resumable: rerun to continue
OMP_NUM_THREADS=1 nice -n 10 python benchmarks/dlpo_tts.py run.objectives=dlpo,diffusion_only   # a subset
Writes runs/bench-dlpo-tts/{results.json,report.md}, benchmarks/results/dlpo_tts.md, dlpo_tts_results.json and
dlpo_tts_reward.png.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from align.diffusion.tts_run import SECTIONS, DLPOTTSRun, report, training_summary  # noqa: E402
from align.recipe_config import load_sections  # noqa: E402

OUT = "runs/bench-dlpo-tts"


def plot(out: Path, figure: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(6, 3.5))
    for method in sorted(p.name for p in out.iterdir() if (p / "seed0" / "metrics.jsonl").is_file()):
        curves = []
        for run in sorted((out / method).glob("seed*/metrics.jsonl")):
            curves.append([json.loads(line)["reward"] for line in run.read_text().splitlines()])
        n = min(len(c) for c in curves)
        mean = np.mean([c[:n] for c in curves], 0)
        ax.plot(range(n), mean, label=f"{method} ({len(curves)} seeds)")
    ax.set_xlabel("iteration (8 samples each)")
    ax.set_ylabel("training reward (DNSMOS P.808)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    figure.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(figure, dpi=90)


def main() -> None:
    configs = Path(__file__).resolve().parent.parent / "recipes" / "configs"
    cfg = load_sections("dlpo_tts_demo", SECTIONS, [f"run.output_dir={OUT}", *sys.argv[1:]], configs)
    cfg["run"].seeds = [0, 1, 2]
    run = DLPOTTSRun(cfg["run"], cfg["model"], cfg["pretrain"], cfg["rl"])
    results = run.execute()
    for key in results:  # recompute training figures from the logs (runs finished before a summary change)
        if "/" in key:
            results[key].update(training_summary(Path(OUT) / key / "metrics.jsonl"))
    if "wer" not in results["ground_truth"]:
        from align.diffusion.speech.ljspeech import read_ljspeech
        from align.diffusion.speech_metrics import make_asr, word_error_rate

        held = read_ljspeech(cfg["run"].data_dir, cfg["model"].sample_rate, True)[-cfg["run"].eval_count :]
        hyps = make_asr(cfg["run"].asr, cfg["model"].sample_rate)([u.wav for u in held])
        results["ground_truth"]["wer"] = word_error_rate([u.text for u in held], hyps)
    run.results = results
    run._save()
    table = report(results)
    here = Path(__file__).resolve().parent / "results"
    here.mkdir(exist_ok=True)
    (here / "dlpo_tts.md").write_text(table)
    (here / "dlpo_tts_results.json").write_text(json.dumps(results, indent=1))
    plot(Path(OUT), here / "dlpo_tts_reward.png")
    print(table)


if __name__ == "__main__":
    main()
