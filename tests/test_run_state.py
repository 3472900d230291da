"""The shared run-folder helpers: config records, atomic writes, stop requests, progress lines, user errors."""

from __future__ import annotations

import io
import json
import os
import signal

import pytest

from align.progress import Progress
from align.run_state import ConfigChanged, RunFolderError, RunRecord, config_differences
from align.stopping import GracefulStop, StopRequested
from align.user_errors import UserError, did_you_mean, run_command, unknown_name


def test_config_differences_name_nested_fields_and_skip_ignored():
    old = {"ppo": {"learning_rate": 1e-5, "epochs": 4}, "out": "a", "hidden": (64, 64)}
    new = {"ppo": {"learning_rate": 2e-5, "epochs": 4}, "out": "b", "hidden": [64, 64], "extra": 1}
    diffs = config_differences(old, new, ignore=("out",))
    assert [(d.field, d.recorded, d.current) for d in diffs] == [
        ("extra", "<absent>", 1),
        ("ppo.learning_rate", 1e-5, 2e-5),
    ]


def test_record_refuses_a_changed_config_and_leaves_the_folder_unchanged(tmp_path):
    run = tmp_path / "run"
    record = RunRecord.open(run, {"algo": "ppo", "lr": 3e-4, "threads": 1}, ignore=("threads",))
    assert not record.resumed
    record.record("stage1", {"score": 0.5})
    before = (run / "run_state.json").read_bytes()
    with pytest.raises(ConfigChanged) as e:
        RunRecord.open(run, {"algo": "sppo", "lr": 3e-4, "threads": 2}, ignore=("threads",))
    assert "algo: 'ppo' -> 'sppo'" in str(e.value) and "--overwrite" in str(e.value)
    assert "threads" not in str(e.value)
    assert (run / "run_state.json").read_bytes() == before
    again = RunRecord.open(run, {"algo": "ppo", "lr": 3e-4, "threads": 2}, ignore=("threads",))
    assert again.resumed and again.done("stage1") and again.result("stage1") == {"score": 0.5}


def test_overwrite_empties_a_run_folder_but_never_a_foreign_one(tmp_path):
    run = tmp_path / "run"
    RunRecord.open(run, {"a": 1}).record("s")
    (run / "model.bin").write_text("x")
    fresh = RunRecord.open(run, {"a": 2}, overwrite=True)
    assert not fresh.resumed and not (run / "model.bin").exists() and fresh.config == {"a": 2}
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(RunFolderError, match="not deleting"):
        RunRecord.open(foreign, {"a": 1}, overwrite=True)
    assert (foreign / "notes.txt").read_text() == "keep me"


def test_a_record_written_before_configs_were_recorded_keeps_its_stages(tmp_path):
    (tmp_path / "run_state.json").write_text(json.dumps({"done": ["a"], "results": {"a": 1}}))
    record = RunRecord.open(tmp_path, {"x": 1})
    assert record.resumed and record.done("a") and record.config == {"x": 1}


def test_progress_writes_plain_lines_with_eta_when_not_a_terminal():
    out = io.StringIO()
    with Progress(100, "train", initial=20, stream=out, interval_s=0.0) as bar:
        bar.update(30, ret=12.3456)
    lines = out.getvalue().splitlines()
    assert lines and lines[0].startswith("train: 50/100 steps (50%)")
    assert "ETA" in lines[0] and "ret 12.35" in lines[0]
    quiet = io.StringIO()
    with Progress(10, "x", stream=quiet, quiet=True, interval_s=0.0) as bar:
        bar.update(5)
    assert quiet.getvalue() == ""


def test_first_signal_requests_a_stop_and_the_handler_is_restored():
    previous = signal.getsignal(signal.SIGTERM)
    with GracefulStop() as stop:
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.requested and stop.signal_name == "SIGTERM"
    assert signal.getsignal(signal.SIGTERM) == previous


def test_user_errors_exit_2_and_stops_exit_130(capsys):
    assert did_you_mean("CartPol-v1", ["CartPole-v1", "Hopper-v5"]) == " (did you mean 'CartPole-v1'?)"
    assert did_you_mean("zzz", ["CartPole-v1"]) == ""

    def bad() -> int:
        raise unknown_name("algorithm", "pop", ["ppo", "sppo"])

    assert run_command(bad, "prog") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "did you mean 'ppo'" in err and "Traceback" not in err

    def stopped() -> int:
        raise StopRequested(40, 100)

    assert run_command(stopped, "prog") == 130
    assert "stopped at step 40 of 100; rerun the same command to resume" in capsys.readouterr().err
    assert run_command(lambda: 0, "prog") == 0
    with pytest.raises(ValueError):
        run_command(lambda: (_ for _ in ()).throw(ValueError("bug")), "prog")
    assert isinstance(unknown_name("x", "y", []), UserError)


def test_overwrite_keeps_the_files_it_is_told_to_keep(tmp_path):
    RunRecord.open(tmp_path, {"a": 1}).record("s")
    (tmp_path / "feedback.sqlite").write_text("paid for")
    (tmp_path / "model.bin").write_text("x")
    RunRecord.open(tmp_path, {"a": 2}, overwrite=True, keep=["feedback.sqlite"])
    assert (tmp_path / "feedback.sqlite").read_text() == "paid for" and not (tmp_path / "model.bin").exists()


def test_a_start_that_did_no_work_takes_the_corrected_config(tmp_path):
    """A first start that stopped before any work (a mistyped model id) left only its record and the kept
    cache: the corrected command starts there instead of being refused; any work done keeps the refusal."""
    run = tmp_path / "run"
    kept = {"keep": ["cache.sqlite"], "fresh_if_unused": True}
    RunRecord.open(run, {"model": "no/such"}, **kept)
    (run / "cache.sqlite").write_text("paid-for answers")
    with pytest.raises(
        ConfigChanged
    ):  # only where asked for (the hierarchy's work lives outside its record's folder)
        RunRecord.open(run, {"model": "org/model"}, keep=["cache.sqlite"])
    fixed = RunRecord.open(run, {"model": "org/model"}, **kept)
    assert not fixed.resumed and fixed.config == {"model": "org/model"}
    assert json.loads((run / "run_state.json").read_text())["config"] == {"model": "org/model"}
    assert (run / "cache.sqlite").read_text() == "paid-for answers"
    (run / "checkpoint.pt").write_text("x")  # something was written: that run is protected
    with pytest.raises(ConfigChanged):
        RunRecord.open(run, {"model": "other/model"}, **kept)
    (run / "checkpoint.pt").unlink()
    fixed.set_progress(step=3)  # progress recorded: protected too
    with pytest.raises(ConfigChanged):
        RunRecord.open(run, {"model": "other/model"}, **kept)
