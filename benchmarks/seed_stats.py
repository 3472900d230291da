"""Statistics over seeds for the benchmarks: t-intervals of a mean and of paired differences (paired by seed).

With n seeds the 95% interval of a mean is mean ± t_{0.975, n-1} * s / sqrt(n), s the sample standard deviation
(ddof 1). A paired difference a - b is the same interval over the per-seed differences of the seeds both have,
which removes what the two share within a seed (the same env seeds, the same evaluation noise)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class Interval:
    """A mean with its two-sided t-interval: mean ± half_width, from n values."""

    mean: float
    half_width: float
    n: int

    @property
    def low(self) -> float:
        return self.mean - self.half_width

    @property
    def high(self) -> float:
        return self.mean + self.half_width

    def excludes_zero(self) -> bool:
        """Whether the interval lies wholly above or below 0 (a difference 'beyond the spread')."""
        return self.n > 1 and (self.low > 0 or self.high < 0)

    def format(self, digits: int = 1, signed: bool = False) -> str:
        sign = "+" if signed else ""
        if self.n < 2 or not math.isfinite(self.half_width):
            return f"{self.mean:{sign}.{digits}f} (n={self.n})"
        return f"{self.mean:{sign}.{digits}f} ± {self.half_width:.{digits}f}"


def t_interval(values: Sequence[float], confidence: float = 0.95) -> Interval:
    """Mean of `values` and the half width of its Student-t interval (nan half width for one value)."""
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        raise ValueError("t_interval needs at least one value")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if x.size == 1:
        return Interval(float(x[0]), math.nan, 1)
    t = stats.t.ppf(0.5 + confidence / 2, df=x.size - 1)
    return Interval(float(x.mean()), float(t * x.std(ddof=1) / math.sqrt(x.size)), int(x.size))


def paired_interval(a: Mapping[int, float], b: Mapping[int, float], confidence: float = 0.95) -> Interval:
    """t-interval of the mean of a[s] - b[s] over the seeds s that both have."""
    seeds = sorted(set(a) & set(b))
    if not seeds:
        raise ValueError("paired_interval: the two sets of runs share no seed")
    return t_interval([a[s] - b[s] for s in seeds], confidence)
