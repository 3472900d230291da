"""The sweep's Ray backend on a local Ray instance (skipped where Ray is not installed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from align.user_errors import UserError
from control.config import TrainConfig
from control.sweep import plan, run_sweep

ray = pytest.importorskip("ray")


@pytest.fixture
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def test_ray_backend_runs_and_resumes(tmp_path, local_ray):
    base = TrainConfig(total_steps=512, num_steps=128, eval_episodes=1)
    configs = plan(base, ["ppo", "sppo"], ["CartPole-v1"], [1], tmp_path)
    summaries = run_sweep(configs, backend="ray")
    assert [s["algo"] for s in summaries] == ["ppo", "sppo"]
    assert all(s["global_step"] == 512 for s in summaries)
    for cfg, summary in zip(
        configs, summaries, strict=True
    ):  # the Ray tasks wrote where the local runs would
        assert json.loads((Path(cfg.out_dir) / "summary.json").read_text()) == summary
    stamps = [(Path(c.out_dir) / "summary.json").stat().st_mtime_ns for c in configs]
    more = plan(base, ["ppo", "sppo"], ["CartPole-v1"], [1, 2], tmp_path)
    assert len(run_sweep(more, backend="ray")) == 4  # only the two new runs are trained
    assert stamps == [(Path(c.out_dir) / "summary.json").stat().st_mtime_ns for c in configs]


def test_unknown_backend_is_named(tmp_path):
    configs = plan(TrainConfig(total_steps=128), ["ppo"], ["CartPole-v1"], [1], tmp_path)
    with pytest.raises(UserError, match="unknown sweep backend 'dask'"):
        run_sweep(configs, backend="dask")
