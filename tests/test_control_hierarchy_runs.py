"""Runs a user can trust, for the hierarchy: the task's folder records its settings at the first start and
refuses a changed config (naming each field, the folder unchanged) unless `--overwrite`; Ctrl-C in the switch
stage stops at an episode's end with a checkpoint, exit 130, and the rerun finishes; a finished primitive trained
with other settings is not reused silently."""

from __future__ import annotations

import dataclasses
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from control.config import TrainConfig
from control.hierarchy.switch import read_episodes
from control.hierarchy.task_record import recorded_otherwise, train_run
from control.hooks import LoopHooks

ROOT = Path(__file__).resolve().parent.parent
SMALL = "transition:\n  steps: 1024\n  checkpoint_every: 512\nswitch:\n  episodes: 8\n"


def _hierarchy(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "control", "hierarchy", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env={"PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"},
    )


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_changed_task_config_is_refused_and_overwrite_starts_over(tmp_path):
    small, changed = tmp_path / "small.yaml", tmp_path / "changed.yaml"
    small.write_text(SMALL)
    changed.write_text(SMALL.replace("episodes: 8", "episodes: 8\n  learning_rate: 0.01"))
    common = ["--task", "toy", "--seeds", "1", "--eval-episodes", "2", "--root", str(tmp_path / "runs")]
    first = _hierarchy("all", *common, "--config", str(small), cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    task = tmp_path / "runs" / "toy"
    record = json.loads((task / "run_state.json").read_text())
    assert record["config"]["switch"]["episodes"] == 8
    before = _files(task)

    refused = _hierarchy("switch", *common, "--config", str(changed), cwd=tmp_path)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert "switch.learning_rate" in refused.stderr and "--overwrite" in refused.stderr
    assert _files(task) == before  # nothing was touched

    # seeds and evaluation settings may change between starts; the unchanged config resumes (nothing to do)
    again = _hierarchy(
        "evaluate",
        *common[:-2],
        "--eval-episodes",
        "3",
        "--root",
        str(tmp_path / "runs"),
        "--config",
        str(small),
        cwd=tmp_path,
    )
    assert again.returncode == 0, again.stderr

    redo = _hierarchy("all", *common, "--config", str(changed), "--overwrite", cwd=tmp_path)
    assert redo.returncode == 0, redo.stderr
    record = json.loads((task / "run_state.json").read_text())
    assert record["config"]["switch"]["learning_rate"] == 0.01
    assert json.loads((task / "s1" / "evaluation.json").read_text())["episodes"] == 2


def test_ctrl_c_in_the_switch_stage_stops_at_an_episode_end_and_the_rerun_finishes(tmp_path):
    config = tmp_path / "long.yaml"
    config.write_text(SMALL.replace("episodes: 8", "episodes: 60\n  checkpoint_every: 5"))
    common = ["--task", "toy", "--seeds", "1", "--root", str(tmp_path / "runs"), "--config", str(config)]
    for stage in ("primitives", "transitions"):
        assert _hierarchy(stage, *common, cwd=tmp_path).returncode == 0
    log = tmp_path / "runs" / "toy" / "s1" / "switches" / "dash-park" / "episodes.csv"
    proc = subprocess.Popen(
        [sys.executable, "-m", "control", "hierarchy", "switch", *common],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"},
    )
    deadline = time.time() + 240
    while time.time() < deadline and len(log.read_text().splitlines() if log.is_file() else []) < 6:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "Traceback" not in err, err
    assert "stopped at switch episode" in err and "of 60" in err and "rerun the same command" in err
    assert "switch dash-park" in err and "ETA" in err  # its progress line
    stopped_at = len(read_episodes(log))
    assert 5 <= stopped_at < 60

    rerun = _hierarchy("switch", *common, cwd=tmp_path)
    assert rerun.returncode == 0, rerun.stderr
    assert [int(r["episode"]) for r in read_episodes(log)] == list(range(1, 61))


def test_a_finished_run_with_other_settings_is_retrained_only_with_overwrite(tmp_path):
    from align.run_state import ConfigChanged

    cfg = TrainConfig(
        algo="ppo",
        env_id="CartPole-v1",
        total_steps=256,
        num_steps=128,
        eval_episodes=0,
        out_dir=str(tmp_path / "forward"),
        quiet=True,
    )
    assert not recorded_otherwise(cfg, LoopHooks())  # no run yet
    assert train_run(cfg, LoopHooks(), overwrite=False)["global_step"] == 256
    assert not recorded_otherwise(cfg, LoopHooks())
    assert not recorded_otherwise(
        dataclasses.replace(cfg, total_steps=512), LoopHooks()
    )  # a longer run resumes
    other = dataclasses.replace(cfg, learning_rate=1e-3)
    assert recorded_otherwise(other, LoopHooks())
    before = _files(tmp_path / "forward")
    with pytest.raises(ConfigChanged, match="learning_rate"):
        train_run(other, LoopHooks(), overwrite=False)
    assert _files(tmp_path / "forward") == before
    assert train_run(other, LoopHooks(), overwrite=True)["global_step"] == 256
    assert not recorded_otherwise(other, LoopHooks())


def test_a_root_recorded_before_primitive_refine_resumes_unless_the_task_refines(tmp_path):
    """Fields added later are left out of the record while they hold their defaults: an older root of a task that does not refine
    resumes; Patrol, whose presets refine Forward and Backward, is refused (its primitives change)."""
    from align.run_state import ConfigChanged
    from control.hierarchy.config import load_config
    from control.hierarchy.task_record import ADDED_LATER, open_task_record

    assert {"primitive_refine", "primitive_candidates", "chains", "handover_starts"} <= set(ADDED_LATER)
    for task in ("hurdle", "patrol"):
        cfg = load_config(task, root=str(tmp_path))
        old = dataclasses.asdict(cfg)
        for name in ADDED_LATER:
            del old[name]  # what a root started before the fields existed recorded
        folder = tmp_path / task
        folder.mkdir()
        (folder / "run_state.json").write_text(json.dumps({"config": old, "done": [], "results": {}}))
        if task == "hurdle":
            open_task_record(cfg)  # resumes
        else:
            with pytest.raises(ConfigChanged, match="primitive_refine.forward.from"):
                open_task_record(cfg)
