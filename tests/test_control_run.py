"""Run bookkeeping shared by the control trainers."""

from __future__ import annotations

import json

from control.config import TrainConfig
from control.run import crossed, finish_run, start_run


def test_crossed_hand_computed():
    assert crossed(2048, 2000, 2048)  # 0 -> 2048 crosses 2000
    assert not crossed(4000, 5000, 2048)  # 1952 -> 4000 crosses nothing
    assert crossed(4096, 4096, 2048)  # landing exactly on the multiple counts
    assert not crossed(4096, 0, 2048)  # 0: never


def test_start_and_finish_write_config_and_summary(tmp_path):
    cfg = TrainConfig(out_dir=str(tmp_path / "run"), seed=7)
    out = start_run(cfg, {"extra": {"k": 1}})
    config = json.loads((out / "config.json").read_text())
    assert config["seed"] == 7 and config["extra"] == {"k": 1}
    summary = finish_run(out, cfg, [1.0, 3.0], 4096, 2048, 2.0, {"seconds": {"total": 2.0}})
    assert summary["eval_mean_return"] == 2.0 and summary["steps_per_s"] == 1024.0
    assert json.loads((out / "summary.json").read_text()) == summary
