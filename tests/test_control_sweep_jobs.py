"""The sweep's local job runner: a job's user error or stop comes back from its worker process as itself
(with its message), not as a broken process pool."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from align.checkpoints import UnsafeCheckpoint
from align.run_state import ConfigChanged, ConfigDifference
from align.stopping import StopRequested
from align.user_errors import UserError
from control.sweep import map_jobs


def refuse_checkpoint(path: str) -> None:
    raise UnsafeCheckpoint(Path(path), "an old pickle")


def refuse_config(path: str) -> None:
    raise ConfigChanged(Path(path), [ConfigDifference("learning_rate", 0.1, 0.2)], "--overwrite")


def square(x: int) -> int:
    return x * x


@pytest.mark.parametrize(
    "fn, words", [(refuse_checkpoint, "--allow-pickle"), (refuse_config, "learning_rate")]
)
def test_a_jobs_user_error_comes_back_with_its_message(tmp_path, fn, words):
    with pytest.raises(UserError, match=words) as caught:
        map_jobs(fn, [{"path": str(tmp_path / "run")}], workers=1)
    assert str(tmp_path / "run") in str(caught.value)
    assert map_jobs(square, [{"x": 3}, {"x": 4}], workers=2) == [9, 16]  # the pool of a later sweep works


def test_a_stop_survives_pickling_with_its_fields():
    stop = pickle.loads(pickle.dumps(StopRequested(40, 100, "switch episode")))
    assert (stop.step, stop.total, stop.what) == (40, 100, "switch episode")
    assert str(stop) == "stopped at switch episode 40 of 100; rerun the same command to resume"


def torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def test_each_local_job_uses_its_share_of_the_cores_in_torch():
    """N workers with torch's default (every core each) oversubscribe the machine; a job gets `cpus_per_job`."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(3)  # what forked workers would inherit
    try:
        assert map_jobs(torch_threads, [{}, {}], workers=2) == [1, 1]
        assert map_jobs(torch_threads, [{}], workers=1, cpus_per_job=2) == [2]
    finally:
        torch.set_num_threads(before)
