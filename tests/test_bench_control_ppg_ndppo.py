"""The PPO / PPG / ND-PPO benchmark script: resume skips finished runs, budgets are checked, metrics by hand."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import control_ppg_ndppo as bench  # noqa: E402
import control_ppg_ndppo_analysis as analysis  # noqa: E402


def _args(tmp_path: Path, seeds: str, steps: int = 512) -> list[str]:
    return [
        "--envs", "CartPole-v1", "--algos", "ppo,ppg", "--seeds", seeds, "--steps", str(steps),
        "--num-steps", "128", "--eval-episodes", "1", "--checkpoint-every", "256", "--workers", "1",
        "--root", str(tmp_path / "runs"), "--out", str(tmp_path / "out"), "--progress-every", "0.2",
    ]  # fmt: skip


def _stamps(root: Path) -> dict[str, int]:
    return {p.parent.name: p.stat().st_mtime_ns for p in root.glob("*/summary.json")}


def test_resume_skips_finished_runs_and_reports(tmp_path, capsys):
    assert bench.main(_args(tmp_path, "1")) == 0
    first = _stamps(tmp_path / "runs")
    assert sorted(first) == ["ppg-CartPole-v1-s1", "ppo-CartPole-v1-s1"]
    assert bench.main(_args(tmp_path, "1,2")) == 0  # seed 1 is finished: only seed 2 trains
    after = _stamps(tmp_path / "runs")
    assert {k: after[k] for k in first} == first
    assert sorted(after) == sorted([*first, "ppg-CartPole-v1-s2", "ppo-CartPole-v1-s2"])
    table = (tmp_path / "out" / "table.md").read_text()
    assert "| CartPole-v1 | ppg - ppo | 2 |" in table and "PPG vs PPO" in table
    runs = json.loads((tmp_path / "out" / "results.json").read_text())["runs"]
    assert len(runs) == 4 and all(np.isfinite(r["final_entropy"]) for r in runs)
    assert (tmp_path / "out" / "returns.png").is_file() and (
        tmp_path / "out" / "entropy_ppg_vs_ppo.png"
    ).is_file()
    assert "4/4 runs finished" in capsys.readouterr().out


def test_a_folder_of_another_budget_is_refused(tmp_path, capsys):
    assert bench.main([*_args(tmp_path, "1"), "--analyse-only"]) == 0  # nothing finished: empty tables
    run = tmp_path / "runs" / "ppo-CartPole-v1-s1"
    run.mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"total_steps": 256}))
    assert bench.main(_args(tmp_path, "1")) == 2
    assert "started with 256 steps, this sweep asks 512" in capsys.readouterr().err
    assert bench.main([*_args(tmp_path, "1"), "--env-steps", "Hopper-v5=5"]) == 2
    assert bench.main([*_args(tmp_path, "1"), "--algos", "ppo,nope"]) == 2


def test_binned_curve_weights_steps_not_episodes():
    # 100 steps in 4 bins of 25: bin 0 has three short episodes, bin 1 none, bins 2 and 3 one each
    steps = np.array([5, 10, 20, 60, 100])
    returns = np.array([1.0, 2.0, 3.0, 10.0, 20.0])
    curve = analysis.binned_curve(steps, returns, 100, bins=4)
    np.testing.assert_allclose(curve, [2.0, 2.0, 10.0, 20.0])  # the empty bin repeats the previous one
    run = analysis.RunResult("ppo", "X", 1, 100, steps, returns, 0.0)
    assert analysis.mean_over_training(run, bins=4) == pytest.approx(8.5)  # the episode mean would be 7.2


def test_paired_table_marks_differences_beyond_the_spread():
    def run(algo: str, seed: int, ret: float) -> analysis.RunResult:
        return analysis.RunResult(algo, "E", seed, 10, np.array([10]), np.array([ret]), ret)

    runs = [run("ppo", s, 10.0 * s) for s in (1, 2, 3)] + [
        run("ndppo", s, 10.0 * s + 5 + 0.1 * s) for s in (1, 2, 3)
    ]
    table = analysis.paired_table(runs, [("ndppo", "ppo")])
    # differences 5.1, 5.2, 5.3: mean 5.2, s 0.1, half width 4.302653 * 0.1 / sqrt(3) = 0.248
    assert "| E | ndppo - ppo | 3 | **+5.2 ± 0.2** | **+5.2 ± 0.2** |" in table
