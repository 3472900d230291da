"""The hand-over delay table (`control.hierarchy.delays`, `benchmarks/control_hierarchy_delay.py`): its summary
against hand-counted tables, and on the toy task, where parking straight after a dash fails and parking after a
scripted brake succeeds."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import control.hierarchy  # noqa: F401  (registers the Hierarchy/ ids)
from control.hierarchy.controller import Composition, SwitchEnv, SwitchPolicy, collect_handover_snapshots
from control.hierarchy.delays import delay_outcomes, delay_summary, switch_outcomes
from control.hierarchy.policies import ScriptedPolicy
from control.hierarchy.toy import scripted_primitives

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "control_hierarchy_delay.py"


def test_the_summary_counts_each_delay_each_snapshot_s_best_delay_and_the_flips():
    table = [[True, False, False], [False, True, False], [False, False, False], [True, True, False]]
    assert delay_summary(np.array(table), [0, 10, 20]) == {
        "snapshots": 4,
        "success_by_delay": {"0": 0.5, "10": 0.5, "20": 0.0},
        "best_fixed_delay": 0,  # the first of the best
        "best_fixed_success": 0.5,
        "success_at_each_best_delay": 0.75,
        "flips_per_snapshot": 1.0,  # 1, 2, 0, 1 changes
    }


def test_repeats_that_disagree_are_counted_and_the_first_repeat_is_summarised():
    first = np.array([[True, False], [False, False]])
    second = np.array([[True, True], [False, False]])
    summary = delay_summary(np.stack([first, second], axis=2), [0, 5])
    assert summary["repeats"] == 2 and summary["same_outcome_share"] == 0.75
    assert summary["success_by_delay"] == {"0": 0.5, "5": 0.0}


def brake(obs: np.ndarray) -> list[float]:
    return [float(np.clip(-2.0 * obs[1], -1.0, 1.0))]


@pytest.fixture(scope="module")
def toy():
    env = gym.make("Hierarchy/PointDashPark-v0")
    prims = scripted_primitives()
    found = collect_handover_snapshots(env, Composition(prims), [("dash", "park")], 6, seed=0)
    starts = found[("dash", "park")]
    assert len(starts) == 6
    yield env, prims, starts
    env.close()


def test_parking_at_once_after_a_dash_fails_and_after_a_brake_succeeds(toy):
    env, prims, starts = toy
    switch_env = SwitchEnv(env, ("dash", "park"), ScriptedPolicy(brake), prims["park"], starts, horizon=40)
    delays = [0, 2, 15, 25]
    table = delay_outcomes(switch_env, starts, delays, seed=0, repeats=2)
    assert table.shape == (6, 4, 2)
    assert not table[:, 0].any() and not table[:, 1].any()  # still at ~2 u/s (1.2 after 2 steps): overshoots
    assert table[:, 2].all()  # braked to rest near the segment start: the park succeeds
    summary = delay_summary(table, delays)
    assert summary["best_fixed_delay"] == 15 and summary["same_outcome_share"] == 1.0  # the toy has no noise
    with pytest.raises(ValueError, match="horizon"):
        delay_outcomes(switch_env, starts, [41])


def test_a_switch_is_run_from_the_same_snapshots_with_its_hand_over_step(toy):
    env, prims, starts = toy
    switch_env = SwitchEnv(env, ("dash", "park"), ScriptedPolicy(brake), prims["park"], starts, horizon=40)
    at_rest = SwitchPolicy(
        lambda obs, t: np.array([0.0, 1.0]) if abs(obs[1]) < 0.05 else np.array([1.0, 0.0])
    )
    rows = switch_outcomes(switch_env, starts, at_rest)
    assert all(ok for ok, _ in rows) and all(5 < t < 40 for _, t in rows)
    for (_, t), snapshot in zip(rows, starts, strict=True):  # the step it chose is a delay that succeeds
        assert delay_outcomes(switch_env, [snapshot], [t])[0, 0, 0]
    at_once = SwitchPolicy(lambda obs, t: np.array([0.0, 1.0]))
    assert switch_outcomes(switch_env, starts, at_once) == [(False, 0)] * len(starts)
    never = SwitchPolicy(lambda obs, t: np.array([1.0, 0.0]))  # the env hands over at its horizon
    assert all(t == 40 for _, t in switch_outcomes(switch_env, starts, never))


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True)


def test_the_benchmark_reads_a_pipeline_root_and_refuses_mistakes_in_one_line(tmp_path):
    root, out, good = tmp_path / "root", tmp_path / "delay.json", tmp_path / "good.json"
    for stage in ("primitives", "transitions"):
        stage_cmd = [sys.executable, "-m", "control", "hierarchy", stage, "--task", "toy", "--seeds", "1"]
        subprocess.run([*stage_cmd, "--root", str(root)], check=True, capture_output=True)
    for during in ("transition", "previous"):
        args = (
            "--task",
            "toy",
            "--root",
            str(root),
            "--during",
            during,
            "--snapshots",
            "5",
            "--label=-" + during,
        )
        done = run(*args, "--delays", "0,10", "--out", str(good))
        assert done.returncode == 0, done.stderr
    fresh = run(
        "--task", "toy", "--root", str(root), "--fresh", "none", "--snapshots", "7", "--out", str(good)
    )
    assert fresh.returncode == 0, fresh.stderr
    entries = json.loads(good.read_text())
    assert set(entries) == {
        "toy-dash-park-s1-transition",
        "toy-dash-park-s1-previous",
        "toy-dash-park-s1-fresh-none",
    }
    assert entries["toy-dash-park-s1-fresh-none"]["snapshots"] == 7  # more than the 5 taken from the starts
    assert entries["toy-dash-park-s1-fresh-none"]["snapshots_from"] == "fresh (none)"
    del entries["toy-dash-park-s1-fresh-none"]
    for entry in entries.values():
        assert entry["snapshots"] == 5 and len(entry["table"]) == 5
        assert entry["success_by_delay"]["0"] == 0.0  # handed over at ~2 u/s: the park overshoots
    assert entries["toy-dash-park-s1-previous"]["success_by_delay"]["10"] == 0.0  # the dash ran on, faster
    assert all(
        len(row) == 2 and set(row) <= {"0", "1"} for row in entries["toy-dash-park-s1-transition"]["table"]
    )
    shutil.rmtree(root / "toy" / "s1" / "transitions" / "dash-park")
    bad = {
        ("--pair", "park-dash"): "not a hand-over pair of toy (dash-park)",
        ("--during", "transition"): "no transition policy",
        ("--seed", "2"): "no hand-over starts",
        ("--delays", "0,five"): "--delays",
        ("--delays", "0,99"): "horizon",
    }
    for extra, message in bad.items():
        result = run("--task", "toy", "--root", str(root), "--out", str(out), *extra)
        assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr
    assert not out.exists()
