"""The DLPO effect benchmark: pretraining stages resume instead of restarting; its tables by hand."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import dlpo_tts_effect as bench  # noqa: E402

T975_2 = 4.302653  # t_{0.975, 2}


def _stamp(path: Path) -> int:
    return path.stat().st_mtime_ns


def _tiny_corpus(root: Path) -> Path:
    """Three 0.25 s clips at the demo model's 8 kHz in LJSpeech's format (reading the 40-clip sample and
    resampling it takes longer than the test)."""
    import numpy as np
    import soundfile as sf

    (root / "wavs").mkdir(parents=True)
    texts = ["a cat sat.", "the dog ran.", "we read it."]
    rng = np.random.default_rng(0)
    for i in range(len(texts)):
        sf.write(str(root / "wavs" / f"c{i}.wav"), 0.1 * rng.standard_normal(2000).astype("float32"), 8000)
    (root / "metadata.csv").write_text("".join(f"c{i}|{t}|{t}\n" for i, t in enumerate(texts)))
    return root


def test_pretraining_stages_are_kept_and_resumed(tmp_path):
    data = _tiny_corpus(tmp_path / "data")
    common = ["--root", str(tmp_path / "r"), "--out", str(tmp_path / "o"), "--set", "pretrain.save_every=1"]
    common += ["--set", f"run.data_dir={data}", "--set", "run.eval_count=1", "--set", "pretrain.batch_size=2"]
    assert bench.main(["--phase", "pretrain", "--stages", "2,3", "--anneal", "", *common]) == 0
    pre = tmp_path / "r" / "pretrain"
    kept = {s: pre / f"step{s}" / "model.safetensors" for s in (2, 3)}
    stamps = {s: _stamp(p) for s, p in kept.items()}
    assert bench.main(["--phase", "pretrain", "--stages", "2,3,4", "--anneal", "2:1e-4", *common]) == 0
    assert {s: _stamp(p) for s, p in kept.items()} == stamps  # finished stages are not redone
    assert (pre / "step4" / "model.safetensors").is_file()
    assert (pre / "step4+anneal2" / "model.safetensors").is_file()
    # the 4-step stage continued from step 3: the log holds steps 1..4 once each, not a restart
    curve = bench.pretrain_curve(pre / "work" / "pretrain_log.jsonl", window=1)
    assert [s for s, _ in curve] == [1, 2, 3, 4] and all(math.isfinite(v) for _, v in curve)
    assert [s for s, _ in bench.pretrain_curve(pre / "anneal-work" / "pretrain_log.jsonl", window=1)] == [
        1,
        2,
    ]
    losses = bench.stage_losses(tmp_path / "r", ["step2", "step4", "step4+anneal2"], window=1)
    assert losses["step2"] == curve[1][1] and set(losses) == {"step2", "step4", "step4+anneal2"}


def test_rl_table_intervals_by_hand():
    def run(diff: float) -> dict:
        return {"mos_diff": diff, "mos_diff_se": 0.01, "wer": 1.0, "train_reward_first": 2.0,
                "train_reward_last": 2.1, "diffusion_loss_first": 0.08, "diffusion_loss_last": 0.07}  # fmt: skip

    results = {f"dlpo/seed{s}": run(d) for s, d in enumerate([0.10, 0.12, 0.14])}
    results |= {f"diffusion_only/seed{s}": run(d) for s, d in enumerate([0.01, 0.02, 0.03])}
    table = bench.rl_table(results, ["dlpo", "diffusion_only"])
    # dlpo: mean 0.12, s = 0.02, half width 4.302653 * 0.02 / sqrt(3) = 0.0497
    assert f"**+0.120 ± {T975_2 * 0.02 / math.sqrt(3):.3f}**" in table
    # paired: 0.09, 0.10, 0.11: mean 0.10, s = 0.01, half width 0.0248
    assert (
        "| dlpo - diffusion_only (paired by seed) | 3 | +0.090, +0.100, +0.110 | **+0.100 ± 0.025** |"
        in table
    )


def test_bad_flags_exit_with_a_message(capsys):
    with pytest.raises(SystemExit) as exc:
        bench.main(["--micro-batch", "7"])
    assert exc.value.code == 2 and "--micro-batch 7 must divide" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        bench.main(["--rl-from", "5", "--stages", "1000,2000"])
    with pytest.raises(SystemExit):
        bench.main(["--anneal", "500"])


def test_report_merges_the_runs_of_other_roots_and_refuses_another_start(tmp_path, capsys):
    import json

    def root(name: str, seeds: list[int], start: list[float]) -> Path:
        run = {"mos_diff": 0.01, "mos_diff_se": 0.01, "wer": 1.0, "train_reward_first": 2.0,
               "train_reward_last": 2.1, "diffusion_loss_first": 0.08, "diffusion_loss_last": 0.07}  # fmt: skip
        results = {"pretrained": {"mos": 2.3, "mos_scores": start, "wer": 1.0}}
        results |= {f"{m}/seed{s}": run for m in ("dlpo", "diffusion_only") for s in seeds}
        (tmp_path / name / "rl").mkdir(parents=True)
        (tmp_path / name / "rl" / "results.json").write_text(json.dumps(results))
        return tmp_path / name

    a, b = (
        root("a", [0, 1], [2.3, 2.4]),
        root("b", [2], [2.3 + 2e-7, 2.4]),
    )  # the same model, pretrained again
    merged = bench.merged_results(a, [b])
    assert sorted(k for k in merged if k.startswith("dlpo/")) == ["dlpo/seed0", "dlpo/seed1", "dlpo/seed2"]
    common = ["--phase", "report", "--root", str(a), "--out", str(tmp_path / "o")]
    assert bench.main([*common, "--merge-roots", str(b)]) == 0
    assert "| dlpo | 3 |" in (tmp_path / "o" / "table.md").read_text()
    other = root("c", [3], [2.0, 2.1])  # another starting model
    assert bench.main([*common, "--merge-roots", f"{b},{other}"]) == 2
    assert "started from another model" in capsys.readouterr().err
    assert bench.main([*common, "--merge-roots", str(a)]) == 2  # the same seeds again
    assert "repeats diffusion_only/seed0, diffusion_only/seed1, dlpo/seed0" in capsys.readouterr().err
