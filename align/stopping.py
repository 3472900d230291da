"""Ctrl-C and SIGTERM as a request to stop at the next safe point, for every training command.

Inside `GracefulStop()` the first SIGINT/SIGTERM only sets `requested`; the loop checks it where stopping
loses nothing (after a checkpoint can be written), saves, and the command exits with `EXIT_STOPPED` after
printing `stopped_message`. A second Ctrl-C interrupts at once. Standard library only.
"""

from __future__ import annotations

import signal
import sys
import threading
from types import FrameType
from typing import Any

EXIT_STOPPED = 130  # the shell's code for a command ended by SIGINT


class StopRequested(Exception):
    """Raised by a loop after it saved at a safe point because a stop was requested."""

    def __init__(
        self,
        step: int | None = None,
        total: int | None = None,
        what: str = "step",
        message: str | None = None,
    ):
        self.step, self.total, self.what = step, total, what
        super().__init__(message or stopped_message(step, total, what))

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:  # survives pickling (a job's stop in a worker)
        return type(self), (self.step, self.total, self.what, str(self))


def stopped_message(step: int | None, total: int | None, what: str = "step") -> str:
    where = f" at {what} {step:,}" if step is not None else ""
    of = f" of {total:,}" if step is not None and total is not None else ""
    return f"stopped{where}{of}; rerun the same command to resume"


class GracefulStop:
    """Context manager turning SIGINT/SIGTERM into a stop request (main thread only; elsewhere a no-op)."""

    def __init__(self, signals: tuple[int, ...] = (signal.SIGINT, signal.SIGTERM)):
        self.signals = signals
        self.requested = False
        self.signal_name: str | None = None
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C: the user wants out now
        self.requested = True
        self.signal_name = signal.Signals(signum).name
        print(
            f"\n{self.signal_name}: stopping at the next safe point (Ctrl-C again to abort at once)",
            file=sys.stderr,
            flush=True,
        )

    def __enter__(self) -> GracefulStop:
        if threading.current_thread() is threading.main_thread():
            for s in self.signals:
                self._previous[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        self._previous.clear()
