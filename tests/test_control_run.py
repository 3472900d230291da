"""Run bookkeeping shared by the control trainers."""

from __future__ import annotations

import csv
import json
import signal
import subprocess
import sys
import time

import torch

from control.config import TrainConfig
from control.run import crossed, finish_run, start_run
from control.train import train


def test_crossed_hand_computed():
    assert crossed(2048, 2000, 2048)  # 0 -> 2048 crosses 2000
    assert not crossed(4000, 5000, 2048)  # 1952 -> 4000 crosses nothing
    assert crossed(4096, 4096, 2048)  # landing exactly on the multiple counts
    assert not crossed(4096, 0, 2048)  # 0: never


def test_start_and_finish_write_config_and_summary(tmp_path):
    cfg = TrainConfig(out_dir=str(tmp_path / "run"), seed=7)
    out = tmp_path / "run"
    start_run(cfg, out, {"extra": {"k": 1}})
    config = json.loads((out / "config.json").read_text())
    assert config["seed"] == 7 and config["extra"] == {"k": 1}
    summary = finish_run(out, cfg, [1.0, 3.0], 4096, 2048, 2.0, {"seconds": {"total": 2.0}})
    assert summary["eval_mean_return"] == 2.0 and summary["steps_per_s"] == 1024.0
    assert json.loads((out / "summary.json").read_text()) == summary


def _steps(path):
    rows = list(csv.reader(path.open()))
    assert rows[0] == ["step", "return", "length"]
    return [float(r[0]) for r in rows[1:] if r]


def test_resume_drops_rows_logged_after_the_checkpoint(tmp_path):
    base = dict(env_id="CartPole-v1", num_steps=256, eval_episodes=0, out_dir=str(tmp_path))
    train(TrainConfig(total_steps=1024, **base))
    with (tmp_path / "episodes.csv").open("a") as f:  # what a killed run wrote past its checkpoint
        f.write("1500,12.0,12\n1700,9.0,9\n")
    train(TrainConfig(total_steps=2048, **base))
    steps = _steps(tmp_path / "episodes.csv")
    assert steps == sorted(steps) and steps[-1] <= 2048 and 1500.0 not in steps
    assert any(s <= 1024 for s in steps) and any(s > 1024 for s in steps)


def test_killed_run_has_its_episodes_on_disk_up_to_the_checkpoint_and_resumes(tmp_path):
    args = [sys.executable, "-m", "control", "train", "--env", "CartPole-v1", "--steps", "400000"]
    args += [
        "--num-steps",
        "256",
        "--checkpoint-every",
        "2048",
        "--eval-episodes",
        "0",
        "--out-dir",
        str(tmp_path),
    ]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ckpt, deadline = tmp_path / "checkpoint.pt", time.time() + 120
    while time.time() < deadline and not (
        ckpt.is_file() and torch.load(ckpt, weights_only=True)["global_step"] >= 4096
    ):
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    saved = torch.load(ckpt, weights_only=True)["global_step"]
    assert saved >= 4096
    # CartPole ends an episode every few dozen steps early on: rows reach the last 256 steps before the checkpoint
    assert max(_steps(tmp_path / "episodes.csv")) > saved - 256
    train(
        TrainConfig(
            env_id="CartPole-v1",
            total_steps=saved + 512,
            num_steps=256,
            eval_episodes=0,
            out_dir=str(tmp_path),
        )
    )
    steps = _steps(tmp_path / "episodes.csv")
    assert steps == sorted(steps) and steps[-1] <= saved + 512


def test_a_file_named_another_way_is_the_same_setting_and_another_file_is_not(tmp_path, monkeypatch):
    """A run whose env kwargs name a file resumes when the same file is named relatively, absolutely or through
    a link (a hierarchy root given as `runs/x` after `/abs/runs/x`); another file is a changed setting."""
    import os

    import pytest

    from align.run_state import ConfigChanged
    from control.run import open_run

    (tmp_path / "a.npz").write_bytes(b"x")
    (tmp_path / "b.npz").write_bytes(b"y")
    os.symlink(tmp_path / "a.npz", tmp_path / "link.npz")
    out = tmp_path / "run"

    def cfg(path: str) -> TrainConfig:
        return TrainConfig(env_id="CartPole-v1", env_kwargs={"states": path}, out_dir=str(out))

    open_run(cfg(str(tmp_path / "a.npz")))  # the first start records the absolute spelling
    monkeypatch.chdir(tmp_path)
    for same in ("a.npz", "./a.npz", "link.npz"):
        open_run(cfg(same), write=False)
    with pytest.raises(ConfigChanged, match="env_kwargs.states"):
        open_run(cfg("b.npz"), write=False)
    with pytest.raises(ConfigChanged, match="env_kwargs.states"):
        open_run(cfg("missing.npz"), write=False)
