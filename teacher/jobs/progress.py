"""A progress bar for caching jobs: done / failed / cached / cost / ETA (tqdm on stderr)."""

from __future__ import annotations

import sys

from tqdm import tqdm

from teacher.jobs.runner import JobReport


class JobProgress:
    """Feeds a tqdm bar from `JobReport` updates; the bar's total is the number of items to send."""

    def __init__(self, total: int, enabled: bool = True, desc: str = "teacher"):
        self.bar = tqdm(total=total, desc=desc, unit="req", disable=not enabled, file=sys.stderr, leave=True)
        self._shown = 0

    def update(self, report: JobReport) -> None:
        self.bar.total = max(0, report.total - report.cached)
        self.bar.update(report.sent - self._shown)
        self._shown = report.sent
        cost = f"${report.cost:.4f}" if report.cost_known else "unknown"
        self.bar.set_postfix(
            done=report.done, failed=report.failed, cached=report.cached, cost=cost, refresh=False
        )

    def close(self) -> None:
        self.bar.close()
