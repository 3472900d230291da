"""One progress line per long stage: a tqdm bar with ETA and a few live metrics on a terminal, plain periodic
lines when the stream is not a terminal (logs, CI), nothing when quiet."""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO


def _format(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


class Progress:
    """Progress of `total` units from `initial` (a resumed run starts part-way).

    `update(n, **metrics)` advances by `n` units and shows the metrics (at most three are useful).
    Plain lines go out after the first update, every `interval_s` seconds and at `close()`."""

    def __init__(
        self,
        total: int,
        desc: str,
        *,
        unit: str = "step",
        initial: int = 0,
        quiet: bool = False,
        stream: TextIO | None = None,
        interval_s: float = 30.0,
    ):
        self.total, self.desc, self.unit, self.quiet = total, desc, unit, quiet
        self.stream = stream if stream is not None else sys.stderr
        self.n, self.initial, self.interval_s = initial, initial, interval_s
        self.metrics: dict[str, Any] = {}
        self.start = self.last_line = time.monotonic()
        self.bar = None
        if not quiet and _isatty(self.stream):
            from tqdm.auto import tqdm

            self.bar = tqdm(
                total=total,
                initial=initial,
                desc=desc,
                unit=unit,
                file=self.stream,
                dynamic_ncols=True,
                unit_scale=total >= 10_000,
                smoothing=0.1,
            )

    def update(self, n: int = 1, **metrics: Any) -> None:
        self.n += n
        self.metrics.update({k: v for k, v in metrics.items() if v is not None})
        if self.quiet:
            return
        if self.bar is not None:
            if metrics:
                self.bar.set_postfix({k: _format(v) for k, v in self.metrics.items()}, refresh=False)
            self.bar.update(n)
        elif self.n - self.initial == n or time.monotonic() - self.last_line >= self.interval_s:
            self._line()  # the first unit done (a log shows the stage running, with an ETA), then periodically

    def line(self) -> str:
        """The plain line: done/total, percent, rate, elapsed, ETA and the metrics."""
        elapsed = time.monotonic() - self.start
        done = self.n - self.initial
        rate = done / elapsed if elapsed > 0 else 0.0
        parts = [f"{self.desc}: {self.n:,}/{self.total:,} {self.unit}s"]
        if self.total:
            parts[0] += f" ({100 * self.n / self.total:.0f}%)"
        parts.append(f"{rate:,.1f} {self.unit}s/s" if rate < 100 else f"{rate:,.0f} {self.unit}s/s")
        parts.append(f"elapsed {_duration(elapsed)}")
        if rate > 0 and self.n < self.total:
            parts.append(f"ETA {_duration((self.total - self.n) / rate)}")
        parts += [f"{k} {_format(v)}" for k, v in self.metrics.items()]
        return ", ".join(parts)

    def _line(self) -> None:
        print(self.line(), file=self.stream, flush=True)
        self.last_line = time.monotonic()
        self._last_n = self.n

    def close(self) -> None:
        if self.quiet:
            return
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        elif self.n > self.initial and getattr(self, "_last_n", None) != self.n:
            self._line()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
