"""The benchmarks' statistics over seeds against intervals computed by hand."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
from seed_stats import Interval, paired_interval, t_interval  # noqa: E402

# t quantiles from tables: t_{0.975, 4} = 2.776445, t_{0.975, 2} = 4.302653, t_{0.95, 4} = 2.131847
T975_4, T975_2, T95_4 = 2.776445, 4.302653, 2.131847


def test_t_interval_of_five_values_by_hand():
    iv = t_interval([1.0, 2.0, 3.0, 4.0, 5.0])
    # mean 3, s = sqrt(10 / 4), s.e. = s / sqrt(5)
    assert iv.mean == pytest.approx(3.0)
    assert iv.half_width == pytest.approx(T975_4 * math.sqrt(2.5) / math.sqrt(5), rel=1e-5)
    assert (iv.low, iv.high, iv.n) == (
        pytest.approx(3 - 1.963243, abs=1e-5),
        pytest.approx(3 + 1.963243, abs=1e-5),
        5,
    )


def test_confidence_level_changes_the_quantile():
    iv = t_interval([1.0, 2.0, 3.0, 4.0, 5.0], confidence=0.90)
    assert iv.half_width == pytest.approx(T95_4 * math.sqrt(0.5), rel=1e-5)


def test_paired_interval_uses_common_seeds_only():
    a = {1: 10.0, 2: 12.0, 3: 14.0, 7: 100.0}
    b = {1: 9.0, 2: 10.0, 3: 11.0, 8: -5.0}
    iv = paired_interval(a, b)  # differences 1, 2, 3: mean 2, s = 1
    assert (iv.mean, iv.n) == (pytest.approx(2.0), 3)
    assert iv.half_width == pytest.approx(T975_2 / math.sqrt(3), rel=1e-5)
    assert not iv.excludes_zero()  # 2 ± 2.484 contains 0
    assert paired_interval({1: 5.0, 2: 5.1, 3: 4.9}, {1: 1.0, 2: 1.0, 3: 1.0}).excludes_zero()


def test_pairing_removes_the_shared_seed_effect():
    # unpaired the two sets overlap widely; paired, the per-seed differences are all +1
    a = {1: 0.0, 2: 100.0, 3: 200.0}
    b = {1: -1.0, 2: 99.0, 3: 199.0}
    assert paired_interval(a, b).half_width == pytest.approx(0.0)
    assert t_interval(list(a.values())).half_width > 200


def test_one_value_and_errors():
    iv = t_interval([4.2])
    assert iv.mean == 4.2 and math.isnan(iv.half_width) and not iv.excludes_zero()
    assert iv.format() == "4.2 (n=1)"
    assert Interval(1.234, 0.5, 3).format(2, signed=True) == "+1.23 ± 0.50"
    with pytest.raises(ValueError, match="at least one value"):
        t_interval([])
    with pytest.raises(ValueError, match="share no seed"):
        paired_interval({1: 1.0}, {2: 1.0})
