"""Caching jobs: send many teacher requests concurrently, within rate limits and a budget, into the cache.

Every finished item is one atomic cache row, so a job stopped by Ctrl-C or killed outright loses at most the
requests in flight; a re-run skips everything cached. Transient failures (429, 5xx, timeouts) are retried
with exponential backoff that honours Retry-After; if they persist the item counts as failed for this run but
is NOT cached, so the next run tries it again. Rejected replies (wrong count, out of range, unparsable) are
cached as failures with their reason and retried only with `retry_failed`.
"""

from __future__ import annotations

import asyncio
import json
import random
import signal
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from teacher.cached import CachedTeacher
from teacher.records import BudgetExceededError, Feedback, TeacherRequest, TransientError


@dataclass(frozen=True)
class JobProblem:
    """A problem read from a job's JSONL input (satisfies `teacher.records.ProblemLike`)."""

    id: str
    question: str
    choices: tuple[str, ...]
    answer: int
    context: str = ""
    image: Path | None = None
    lecture: str = ""
    solution: str = ""


TASK_FIELDS = {"score": ("sentences",), "correct": ("rationale",), "judge": ("rationale_a", "rationale_b")}


def read_items(path: str | Path, task: str) -> list[tuple[str, JobProblem, tuple]]:
    """(item_id, problem, task arguments) per JSONL line; errors name the line and field."""
    path = Path(path)
    if task not in TASK_FIELDS:
        raise ValueError(f"unknown task {task!r}; expected one of {sorted(TASK_FIELDS)}")
    items = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}:{lineno}: not valid JSON ({err.msg})") from None
        for name in ("id", "question", "choices", "answer", *TASK_FIELDS[task]):
            if name not in row:
                raise ValueError(f"{path}:{lineno}: missing field {name!r} (task {task!r})")
        image = row.get("image")
        if image:
            image = Path(image) if Path(image).is_absolute() else path.parent / image
        problem = JobProblem(
            str(row["id"]),
            row["question"],
            tuple(row["choices"]),
            int(row["answer"]),
            row.get("context", ""),
            image or None,
            row.get("lecture", ""),
            row.get("solution", ""),
        )
        args = tuple(row[name] for name in TASK_FIELDS[task])
        items.append((str(row.get("item_id", f"{row['id']}#{lineno}")), problem, args))
    return items


class RateLimiter:
    """Requests-per-minute and tokens-per-minute limits over a sliding 60-second window."""

    def __init__(self, rpm: int = 0, tpm: int = 0):
        self.rpm, self.tpm = rpm, tpm
        self.events: deque[tuple[float, int]] = deque()
        self.lock = asyncio.Lock()

    async def acquire(self, tokens: int) -> None:
        if not self.rpm and not self.tpm:
            return
        async with self.lock:
            while True:
                now = time.monotonic()
                while self.events and now - self.events[0][0] >= 60.0:
                    self.events.popleft()
                used = sum(t for _, t in self.events)
                if (not self.rpm or len(self.events) < self.rpm) and (
                    not self.tpm or used + tokens <= self.tpm or not self.events
                ):
                    self.events.append((now, tokens))
                    return
                await asyncio.sleep(max(0.01, 60.0 - (now - self.events[0][0])))


@dataclass
class JobConfig:
    """How a caching job runs."""

    concurrency: int = field(default=16, metadata={"help": "Requests in flight at once."})
    rpm: int = field(default=0, metadata={"help": "Requests per minute (0: unlimited)."})
    tpm: int = field(default=0, metadata={"help": "Estimated tokens per minute (0: unlimited)."})
    max_retries: int = field(default=6, metadata={"help": "Retries of a transient failure."})
    backoff_s: float = field(
        default=1.0, metadata={"help": "First backoff; doubles each retry (with jitter)."}
    )
    budget: float | None = field(
        default=None, metadata={"help": "Stop launching requests past this many USD."}
    )
    progress: bool = field(default=True, metadata={"help": "Show a progress bar."})


@dataclass
class JobSummary:
    total: int = 0
    done: int = 0
    cached: int = 0
    failed: int = 0
    transient_failed: int = 0
    cost: float = 0.0
    unpriced: int = 0
    seconds: float = 0.0
    stopped: str | None = None
    failures: dict[str, int] = field(default_factory=dict)


def _estimate_tokens(request: TeacherRequest) -> int:
    return (len(request.system) + len(request.user_text)) // 4 + int(request.params.get("max_tokens", 0)) // 4


async def run_job(
    teacher: CachedTeacher, task: str, items: list[tuple[str, Any, tuple]], cfg: JobConfig
) -> JobSummary:
    """Run every item through `teacher` (cache first); returns counts. Raises `BudgetExceededError` when the
    budget stopped the job (after in-flight requests finished and were cached)."""
    summary = JobSummary(total=len(items))
    start = time.perf_counter()
    requests = [teacher.teacher.build(task, problem, *args) for _, problem, args in items]
    pending = []
    for request in requests:
        hit = teacher.lookup(request)
        if hit is not None:
            summary.cached += 1
            summary.failed += not hit.ok
        else:
            pending.append(request)
    limiter = RateLimiter(cfg.rpm, cfg.tpm)
    stop = asyncio.Event()
    queue: asyncio.Queue[TeacherRequest] = asyncio.Queue()
    for request in pending:
        queue.put_nowait(request)
    bar = None
    if cfg.progress:
        from tqdm import tqdm

        bar = tqdm(total=len(items), initial=summary.cached, unit="req", desc=task, dynamic_ncols=True)

    def show() -> None:
        if bar is not None:
            bar.set_postfix(
                done=summary.done, failed=summary.failed, cached=summary.cached, cost=f"${summary.cost:.4f}"
            )
            bar.update(1)

    async def send(request: TeacherRequest) -> Feedback | None:
        for attempt in range(cfg.max_retries + 1):
            await limiter.acquire(_estimate_tokens(request))
            try:
                return await teacher.run(request)
            except TransientError as err:
                if attempt == cfg.max_retries:
                    summary.failures[str(err)] = summary.failures.get(str(err), 0) + 1
                    return None
                delay = err.retry_after if err.retry_after is not None else cfg.backoff_s * 2**attempt
                await asyncio.sleep(delay * (1 + 0.1 * random.random()))
        return None

    async def worker() -> None:
        while not stop.is_set():
            try:
                request = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            if cfg.budget is not None and summary.cost >= cfg.budget:
                summary.stopped = "budget"
                stop.set()
                return
            fb = await send(request)
            if fb is None:
                summary.transient_failed += 1
                summary.failed += 1
            else:
                summary.done += 1
                summary.failed += not fb.ok
                if not fb.ok:
                    summary.failures[fb.failure or "?"] = summary.failures.get(fb.failure or "?", 0) + 1
                if fb.cost is None:
                    summary.unpriced += 1
                else:
                    summary.cost += fb.cost
            show()

    loop = asyncio.get_running_loop()
    interrupted = False

    def on_sigint() -> None:
        nonlocal interrupted
        if interrupted:  # second Ctrl-C: abandon in-flight requests (nothing is half-written)
            for task_ in workers:
                task_.cancel()
        interrupted = True
        summary.stopped = "interrupted"
        stop.set()

    try:
        loop.add_signal_handler(signal.SIGINT, on_sigint)
    except (NotImplementedError, RuntimeError):
        pass
    workers = [asyncio.create_task(worker()) for _ in range(max(1, cfg.concurrency))]
    try:
        await asyncio.gather(*workers, return_exceptions=True)
    finally:
        try:
            loop.remove_signal_handler(signal.SIGINT)
        except (NotImplementedError, RuntimeError):
            pass
        if bar is not None:
            bar.close()
    summary.seconds = time.perf_counter() - start
    if summary.stopped == "budget":
        raise BudgetExceededError(summary.cost, cfg.budget or 0.0, summary.done)
    return summary
