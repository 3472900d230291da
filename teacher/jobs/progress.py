"""Progress of a caching job: one line with done / failed / cached / cost and the ETA.

On a terminal it is a tqdm bar; otherwise (a log file, a pipe, a batch system) plain lines, one each time
another tenth of the work is done or `every_s` seconds have passed; `quiet` prints nothing.
"""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from teacher.jobs.runner import JobReport


def eta_text(seconds: float) -> str:
    """`1h02m`, `3m05s` or `12s`."""
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"


class JobProgress:
    """Fed with `JobReport` updates; its total is the number of items still to send (cached ones excluded).
    `mode` is "bar" (tqdm), "lines" (plain lines) or "quiet"; `auto(...)` picks it from the stream."""

    def __init__(
        self,
        total: int,
        mode: str = "bar",
        desc: str = "teacher",
        stream: TextIO | None = None,
        every_s: float = 30.0,
    ):
        if mode not in ("bar", "lines", "quiet"):
            raise ValueError(f"progress mode must be 'bar', 'lines' or 'quiet', got {mode!r}")
        self.mode, self.desc, self.every_s = mode, desc, every_s
        self.stream = stream or sys.stderr
        self.total, self._shown, self._start = total, 0, time.monotonic()
        self._last_line_at, self._last_line_sent = self._start, 0
        self.bar = None
        if mode == "bar":
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=desc, unit="req", file=self.stream, leave=True)

    @classmethod
    def auto(cls, total: int, quiet: bool, desc: str, stream: TextIO | None = None) -> JobProgress:
        """A bar on a terminal, plain lines elsewhere, nothing when `quiet`."""
        stream = stream or sys.stderr
        mode = "quiet" if quiet else ("bar" if stream.isatty() else "lines")
        return cls(total, mode, desc, stream)

    def update(self, report: JobReport) -> None:
        self.total = max(0, report.total - report.cached)
        sent = report.sent
        cost = f"${report.cost:.4f}" if report.cost_known else "unknown"
        if self.bar is not None:
            self.bar.total = self.total
            self.bar.update(sent - self._shown)
            self.bar.set_postfix(
                done=report.done, failed=report.failed, cached=report.cached, cost=cost, refresh=False
            )
        elif self.mode == "lines" and sent > self._last_line_sent:
            now = time.monotonic()
            tenth = max(1, self.total // 10)
            if sent - self._last_line_sent >= tenth or now - self._last_line_at >= self.every_s:
                self._last_line_at, self._last_line_sent = now, sent
                print(self.line(report, now - self._start), file=self.stream, flush=True)
        self._shown = sent

    def line(self, report: JobReport, elapsed_s: float) -> str:
        """`score: 120/2000 sent (6%), 118 done, 2 failed, 30 cached, $0.0123, 14.2 req/s, ETA 2m12s`."""
        sent, total = report.sent, max(self.total, report.sent)
        rate = sent / elapsed_s if elapsed_s > 0 else 0.0
        eta = eta_text((total - sent) / rate) if rate > 0 else "?"
        cost = f"${report.cost:.4f}" if report.cost_known else "cost unknown"
        return (
            f"{self.desc}: {sent}/{total} sent ({100 * sent / max(total, 1):.0f}%), {report.done} done, "
            f"{report.failed} failed, {report.cached} cached, {cost}, {rate:.1f} req/s, ETA {eta}"
        )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
