"""The caching job: send every uncached item to the teacher under concurrency, rate and budget limits.

Each result is written to the cache in one atomic statement when it is complete, so a job killed at any
moment leaves only whole rows; a re-run skips every cached key (failures too, unless `retry_failed`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from teacher.cache import FeedbackCache, cache_key
from teacher.client import Teacher
from teacher.jobs.items import JobItem
from teacher.limits import Budget, RateLimiter, RetryPolicy
from teacher.pricing import PriceTable
from teacher.records import BudgetExceededError, Feedback, TeacherError, TeacherRequest, TransientError

log = logging.getLogger(__name__)


@dataclass
class JobConfig:
    """Limits of a caching job."""

    concurrency: int = field(default=16, metadata={"help": "Requests in flight at once."})
    rpm: float | None = field(default=None, metadata={"help": "Requests per minute (None: unlimited)."})
    tpm: float | None = field(
        default=None, metadata={"help": "Tokens per minute, estimated (None: unlimited)."}
    )
    budget_usd: float | None = field(default=None, metadata={"help": "Stop launching requests at this cost."})
    budget_tokens: int | None = field(
        default=None, metadata={"help": "Stop at this many tokens (for models without a price)."}
    )
    retry_failed: bool = field(default=False, metadata={"help": "Send again items cached as failed."})
    max_retries: int = field(default=6, metadata={"help": "Retries of a transient error (429/5xx/timeout)."})
    backoff_base_s: float = field(default=0.5, metadata={"help": "First backoff ceiling in seconds."})
    backoff_cap_s: float = field(default=60.0, metadata={"help": "Largest backoff in seconds."})

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {self.concurrency}")


@dataclass
class JobReport:
    """What a job did. `sent` counts requests that reached the teacher (retries of one item count once)."""

    total: int = 0
    cached: int = 0
    done: int = 0
    failed: int = 0
    skipped: int = 0
    retries: int = 0
    cost: float = 0.0
    cost_known: bool = True
    input_tokens: int = 0
    output_tokens: int = 0
    elapsed_s: float = 0.0
    stopped: str | None = None  # None, "budget", "interrupted" or "error"
    message: str = ""

    @property
    def sent(self) -> int:
        return self.done + self.failed

    @property
    def complete(self) -> bool:
        return self.stopped is None and self.skipped == 0


def estimate_tokens(request: TeacherRequest) -> tuple[int, int]:
    """(input, output) token estimate before sending: ~4 characters a token, ~765 per image (a 512x512
    tile), and `max_tokens` for the reply (an upper bound, so the budget errs on the safe side)."""
    text = len(request.system) + len(request.user_text)
    return text // 4 + 765 * len(request.images), int(request.params.get("max_tokens", 1024))


class JobRunner:
    """Runs one task over many items with a shared teacher and cache. Call `stop()` (e.g. on Ctrl-C) to stop
    launching; `abandon()` to cancel requests in flight (their results are never written)."""

    def __init__(
        self,
        teacher: Teacher,
        cache: FeedbackCache,
        task: str,
        config: JobConfig | None = None,
        prices: PriceTable | None = None,
        on_progress: Callable[[JobReport], None] | None = None,
    ):
        self.teacher, self.cache, self.task = teacher, cache, task
        self.config = config or JobConfig()
        self.prices = prices or PriceTable()
        self.on_progress = on_progress
        self.report = JobReport()
        self._stopping = False
        self._workers: list[asyncio.Task] = []

    def request(self, item: JobItem) -> TeacherRequest:
        request = self.teacher.build(self.task, item.problem, *item.args)
        return dataclasses.replace(request, item_id=item.item_id)

    def key(self, request: TeacherRequest) -> str:
        return cache_key(self.teacher.name, self.teacher.model, request)

    def pending(self, items: list[JobItem]) -> list[tuple[str, TeacherRequest]]:
        """(key, request) of the items that still need the teacher; counts the cached ones. Duplicate
        requests (same key) are sent once."""
        out, seen = [], set()
        for item in items:
            request = self.request(item)
            key = self.key(request)
            if key in seen:
                continue
            seen.add(key)
            hit = self.cache.get(key)
            if hit is not None and (hit.ok or not self.config.retry_failed):
                self.report.cached += 1
            else:
                out.append((key, request))
        return out

    def _budget(self) -> Budget:
        cfg = self.config
        if cfg.budget_usd is not None:
            if self.prices.cost(self.teacher.model, 1, 1) is None:
                raise TeacherError(
                    f"no price for model {self.teacher.model!r}, so a dollar budget cannot be kept: add the "
                    "model to a --prices YAML file, or use --budget-tokens"
                )
            return Budget(cfg.budget_usd, "usd")
        if cfg.budget_tokens is not None:
            return Budget(cfg.budget_tokens, "tokens")
        return Budget(None)

    def stop(self) -> None:
        """Launch nothing more; requests in flight finish and are cached."""
        if not self._stopping:
            self._stopping = True
            self.report.stopped = self.report.stopped or "interrupted"

    def abandon(self) -> None:
        """Cancel requests in flight; nothing of theirs is written."""
        self.stop()
        for worker in self._workers:
            worker.cancel()

    async def run(self, items: list[JobItem]) -> JobReport:
        start = time.perf_counter()
        self.report = JobReport(total=len(items))
        work = self.pending(items)
        self._notify()
        budget = self._budget()
        if self.prices.cost(self.teacher.model, 1, 1) is None:
            self.report.cost_known = False
            if work:
                log.warning(
                    "no price for model %r: cost is unknown (add it with --prices)", self.teacher.model
                )
        queue: asyncio.Queue[tuple[str, TeacherRequest]] = asyncio.Queue()
        for entry in work:
            queue.put_nowait(entry)
        limiter = RateLimiter(self.config.rpm, self.config.tpm)
        retry = RetryPolicy(self.config.max_retries, self.config.backoff_base_s, self.config.backoff_cap_s)
        self._workers = [
            asyncio.create_task(self._worker(queue, budget, limiter, retry))
            for _ in range(min(self.config.concurrency, max(1, len(work))))
        ]
        try:
            results = await asyncio.gather(*self._workers, return_exceptions=True)
        finally:
            self.report.elapsed_s = time.perf_counter() - start
        for result in results:
            if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
                raise result
        self.report.skipped = self.report.total - self.report.cached - self.report.sent
        self._notify()
        return self.report

    def _notify(self) -> None:
        if self.on_progress is not None:
            self.on_progress(self.report)

    async def _worker(
        self, queue: asyncio.Queue, budget: Budget, limiter: RateLimiter, retry: RetryPolicy
    ) -> None:
        while not self._stopping:
            try:
                key, request = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            est_in, est_out = estimate_tokens(request)
            if budget.unit == "tokens":
                estimate = float(est_in + est_out)
            else:
                estimate = self.prices.cost(self.teacher.model, est_in, est_out) or 0.0
            try:
                budget.reserve(estimate)
            except BudgetExceededError as err:
                self.report.stopped, self.report.message = "budget", str(err)
                self._stopping = True
                return
            try:
                await limiter.acquire(est_in + est_out)
                feedback = await self._send(request, retry)
            except TeacherError as err:  # not about this request (bad key, unknown model): stop the job
                budget.release(estimate)
                self.report.stopped, self.report.message = "error", str(err)
                self._stopping = True
                return
            except BaseException:
                budget.release(estimate)
                raise
            cost = self.prices.cost(self.teacher.model, feedback.input_tokens, feedback.output_tokens)
            feedback.cost = cost
            self.cache.put(key, request, self.teacher.name, self.teacher.model, feedback)
            tokens = feedback.input_tokens + feedback.output_tokens
            budget.settle(estimate, float(tokens) if budget.unit == "tokens" else (cost or 0.0))
            rep = self.report
            rep.cost += cost or 0.0
            rep.input_tokens += feedback.input_tokens
            rep.output_tokens += feedback.output_tokens
            if feedback.ok:
                rep.done += 1
            else:
                rep.failed += 1
            self._notify()

    async def _send(self, request: TeacherRequest, retry: RetryPolicy) -> Feedback:
        """The teacher's feedback, retrying transient errors; when retries run out the request is recorded
        as failed with the last error as its reason."""

        def count(attempt: int, err: TransientError, wait: float) -> None:
            self.report.retries += 1
            log.info("retry %d of %s after %.2fs: %s", attempt + 1, request.item_id, wait, err)

        try:
            return await retry.call(lambda: self.teacher.run(request), on_retry=count)
        except TransientError as err:
            return Feedback(
                task=request.task,
                ok=False,
                failure=f"transient error after {retry.max_retries} retries: {err}",
                model=self.teacher.model,
                prompt_version=request.prompt_version,
            )
