"""The CPU demo end to end (slow, ~30-60 min on 2 shared cores): pretrain, then DLPO and the baselines.

DLPO must raise the held-out MOS above the pretrained model's (seed 0) and keep WER within 0.10 of it; RWR,
DDPO and DPOK must run through the same trainer and produce finite figures."""

import math

import pytest
from recipes_sections import load_recipe

from align.diffusion.tts_run import DLPOTTSRun

WER_BOUND = 0.10


@pytest.mark.slow
def test_demo_dlpo_raises_mos_and_keeps_wer(tmp_path):
    cfg = load_recipe("dlpo_tts").load_config(
        "dlpo_tts_demo",
        [f"run.output_dir={tmp_path}", "run.objectives=dlpo,rwr,ddpo,dpok", "run.seeds=0"],
    )
    results = DLPOTTSRun(cfg["run"], cfg["model"], cfg["pretrain"], cfg["rl"]).execute()
    base, dlpo = results["pretrained/seed0"], results["dlpo/seed0"]
    assert dlpo["mos"] > base["mos"], (base, dlpo)
    assert dlpo["wer"] <= base["wer"] + WER_BOUND
    for name in ("rwr", "ddpo", "dpok"):
        assert all(math.isfinite(results[f"{name}/seed0"][k]) for k in ("mos", "wer", "samples_per_s"))
    assert (tmp_path / "audio" / "dlpo" / "seed0" / "sample0.png").is_file()
