"""Episode clock for the normality-guided critic: step indices, recent-return variance, resume."""

import numpy as np
import pytest
import torch

from control.algos.ndppo_tracker import EpisodeClock


def test_clock_counts_steps_and_records_finished_episodes():
    clock = EpisodeClock(num_envs=2, window=3, min_std=0.5)
    assert not clock.ready
    seen = []
    done_schedule = [(False, False), (True, False), (False, False), (False, True), (True, False)]
    for done in done_schedule:
        seen.append(clock.observe(np.array([1.0, 2.0]), np.array(done)).tolist())
    assert seen == [[0, 0], [1, 1], [0, 2], [1, 3], [2, 0]]
    # env 0 ended with returns 2 (2 steps) and 3 (3 steps); env 1 with 8 (4 steps)
    assert list(clock.returns) == [2.0, 8.0, 3.0]
    assert clock.mean_length() == pytest.approx(3.0)
    assert clock.initial_variance() == pytest.approx(np.var([2.0, 8.0, 3.0]))
    sigma = clock.std(torch.tensor([0, 3]))
    assert sigma[0].item() == pytest.approx(np.std([2.0, 8.0, 3.0]))
    assert sigma[1].item() == pytest.approx(0.5)


def test_clock_uses_floor_until_two_episodes_and_resumes_from_state():
    clock = EpisodeClock(num_envs=1, window=5, min_std=2.0)
    clock.observe(np.array([1.0]), np.array([False]))
    torch.testing.assert_close(clock.std(torch.tensor([0, 1])), torch.tensor([2.0, 2.0]))
    clock.observe(np.array([1.0]), np.array([True]))
    clone = EpisodeClock(num_envs=1, window=5, min_std=2.0)
    clone.load_state_dict(clock.state_dict())
    assert clone.state_dict() == clock.state_dict()
