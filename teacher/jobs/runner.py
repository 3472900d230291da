"""The caching job: send every uncached item to the teacher under concurrency, rate and budget limits.

Each result is written to the cache in one transaction when it is complete, so a job killed at any moment
leaves only whole rows; a re-run skips every cached key (failures too, unless `retry_failed`). An item is
claimed in the cache before it is sent, so two jobs over one cache split the work instead of paying twice.
One unusual reply fails its item (with the reason), never the job; only job-wide errors (a rejected key, an
unknown model, the budget) stop it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from teacher.cache import FeedbackCache, cache_key, new_owner
from teacher.client import Teacher
from teacher.jobs.items import JobItem
from teacher.limits import Budget, RateLimiter, RetryPolicy
from teacher.pricing import PriceTable
from teacher.prompts import repair_message
from teacher.records import (
    BudgetExceededError,
    Feedback,
    JobWideError,
    RawReply,
    TeacherRequest,
    TransientError,
    UsageError,
    failed_feedback,
)

log = logging.getLogger(__name__)


def _positive(name: str, value: float | None, allow_none: bool = True) -> None:
    if value is None and allow_none:
        return
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ValueError(
            f"{name} must be a positive finite number{' or None' if allow_none else ''}, got {value!r}"
        )


@dataclass
class JobConfig:
    """Limits of a caching job."""

    concurrency: int = field(default=16, metadata={"help": "Requests in flight at once."})
    rpm: float | None = field(default=None, metadata={"help": "Requests per minute (None: unlimited)."})
    tpm: float | None = field(
        default=None, metadata={"help": "Tokens per minute, estimated (None: unlimited)."}
    )
    budget_usd: float | None = field(
        default=None, metadata={"help": "Dollars this run may spend (per run; see budget_total_usd)."}
    )
    budget_total_usd: float | None = field(
        default=None,
        metadata={"help": "Dollars every run on this cache may spend together (the cache's spend ledger)."},
    )
    budget_tokens: int | None = field(
        default=None, metadata={"help": "Tokens this run may spend (for models without a price)."}
    )
    retry_failed: bool = field(default=False, metadata={"help": "Send again items cached as failed."})
    max_retries: int = field(default=6, metadata={"help": "Retries of a transient error (429/5xx/timeout)."})
    backoff_base_s: float = field(default=0.5, metadata={"help": "First backoff ceiling in seconds."})
    backoff_cap_s: float = field(default=60.0, metadata={"help": "Largest backoff in seconds."})
    lease_s: float = field(
        default=600.0,
        metadata={"help": "How long a claim on an item holds against other jobs (renewed on each retry)."},
    )

    def __post_init__(self) -> None:
        if (
            isinstance(self.concurrency, bool)
            or not isinstance(self.concurrency, int)
            or self.concurrency < 1
        ):
            raise ValueError(f"concurrency must be an integer of at least 1, got {self.concurrency!r}")
        for name in ("rpm", "tpm", "budget_usd", "budget_total_usd", "budget_tokens"):
            _positive(name, getattr(self, name))
        _positive("lease_s", self.lease_s, allow_none=False)
        if (
            isinstance(self.max_retries, bool)
            or not isinstance(self.max_retries, int)
            or self.max_retries < 0
        ):
            raise ValueError(f"max_retries must be an integer of at least 0, got {self.max_retries!r}")
        for name in ("backoff_base_s", "backoff_cap_s"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a finite number of seconds, at least 0, got {value!r}")


@dataclass
class JobReport:
    """What a job did. `sent` counts requests that reached the teacher (retries of one item count once)."""

    total: int = 0
    cached: int = 0
    done: int = 0
    failed: int = 0
    skipped: int = 0
    retries: int = 0
    claimed_elsewhere: int = 0  # items another live job (or a provider batch) was sending
    uncached_failures: int = 0  # failed by an unexpected error: not cached, a re-run sends them again
    repairs_skipped: int = 0  # repair turns not sent because they could pass the budget
    cost: float = 0.0
    cost_known: bool = True
    input_tokens: int = 0
    output_tokens: int = 0
    elapsed_s: float = 0.0
    stopped: str | None = None  # None, "budget", "interrupted", "error" or "pending"
    message: str = ""

    @property
    def sent(self) -> int:
        return self.done + self.failed

    def record(self, feedback: Feedback) -> None:
        """Count one result that was paid for and cached."""
        self.cost += feedback.cost or 0.0
        self.input_tokens += feedback.input_tokens
        self.output_tokens += feedback.output_tokens
        if feedback.ok:
            self.done += 1
        else:
            self.failed += 1

    @property
    def complete(self) -> bool:
        return self.stopped is None and self.skipped == 0


def estimate_tokens(request: TeacherRequest) -> tuple[int, int]:
    """(input, output) token estimate before sending: ~4 characters a token, ~765 per image (a 512x512
    tile), and `max_tokens` for the reply (an upper bound, so the budget errs on the safe side)."""
    text = len(request.system) + len(request.user_text)
    return text // 4 + 765 * len(request.images), int(request.params.get("max_tokens", 1024))


def estimate_repair_tokens(request: TeacherRequest, first: RawReply, failure: str) -> tuple[int, int]:
    """(input, output) estimate of the repair turn: the first turn's input again (as the provider counted
    it, else estimated), the first reply sent back, the repair message, and `max_tokens` for the reply."""
    est_in, est_out = estimate_tokens(request)
    first_in = first.input_tokens or est_in
    echoed = first.output_tokens or len(first.text) // 4
    return first_in + echoed + len(repair_message(failure)) // 4 + 8, est_out


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
        self.owner = new_owner()
        self.started = time.time()
        self.budget: Budget | None = None
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

    def cost_of(self, input_tokens: int, output_tokens: int, batch: bool = False) -> float | None:
        return self.prices.cost(self.teacher.model, input_tokens, output_tokens, batch=batch)

    def make_budget(self) -> Budget:
        """This run's budget: dollars (per run and/or in total over the cache's spend ledger) or tokens."""
        cfg = self.config
        if cfg.budget_usd is not None or cfg.budget_total_usd is not None:
            if self.cost_of(1, 1) is None:
                raise UsageError(
                    f"no price for model {self.teacher.model!r}, so a dollar budget cannot be kept: add the "
                    "model to a --prices YAML file, or use --budget-tokens"
                )
            spent_before = self.cache.total_spent() if cfg.budget_total_usd is not None else 0.0
            return Budget(cfg.budget_usd, "usd", cfg.budget_total_usd, spent_before)
        if cfg.budget_tokens is not None:
            return Budget(cfg.budget_tokens, "tokens")
        return Budget(None)

    def estimate(self, budget: Budget, tokens: tuple[int, int], batch: bool = False) -> float:
        """What a request of (input, output) tokens counts against the budget."""
        if budget.unit == "tokens":
            return float(sum(tokens))
        return self.cost_of(*tokens, batch=batch) or 0.0

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

    def finish_budget_message(self) -> None:
        """A budget stop quotes the final spend (after in-flight requests settled), as the summary does."""
        if self.report.stopped == "budget" and self.budget is not None:
            self.report.message = str(self.budget.exceeded())

    async def run(self, items: list[JobItem]) -> JobReport:
        start = time.perf_counter()
        self.started = time.time()
        self.report = JobReport(total=len(items))
        work = self.pending(items)
        self._notify()
        self.budget = budget = self.make_budget()
        if self.cost_of(1, 1) is None:
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
            self.cache.release_claims(self.owner)
        for result in results:
            if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
                raise result
        rep = self.report
        rep.skipped = rep.total - rep.cached - rep.sent
        self.finish_budget_message()
        if rep.stopped is None and rep.claimed_elsewhere:
            rep.stopped = "pending"
            rep.message = (
                f"{rep.claimed_elsewhere} item(s) were being sent by another job on this cache (or sit in a "
                "provider batch); re-run the same command once it finishes to collect them"
            )
        self._notify()
        return rep

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
            resend_before = self.started if self.config.retry_failed else None
            outcome = self.cache.claim(key, self.owner, self.config.lease_s, resend_before)
            if outcome != "claimed":
                if outcome == "cached":  # another job finished it after this one started
                    self.report.cached += 1
                else:
                    self.report.claimed_elsewhere += 1
                self._notify()
                continue
            await self._one(key, request, budget, limiter, retry)

    async def _one(
        self, key: str, request: TeacherRequest, budget: Budget, limiter: RateLimiter, retry: RetryPolicy
    ) -> None:
        """Send one claimed item and record its result; every outcome releases the claim."""
        est_in, est_out = estimate_tokens(request)
        reserved = [self.estimate(budget, (est_in, est_out))]
        try:
            budget.reserve(reserved[0])
        except BudgetExceededError:
            self.cache.release_claims(self.owner, key)
            self.report.stopped = "budget"
            self._stopping = True
            return

        def may_repair(first: RawReply, failure: str) -> bool:
            extra = self.estimate(budget, estimate_repair_tokens(request, first, failure))
            try:
                budget.reserve(extra)
            except BudgetExceededError:
                self.report.repairs_skipped += 1
                return False
            reserved.append(extra)
            return True

        try:
            await limiter.acquire(est_in + est_out)
            feedback = await self._send(key, request, retry, may_repair)
        except JobWideError as err:  # not about this request (bad key, unknown model): stop the job
            budget.release(sum(reserved))
            self.cache.release_claims(self.owner, key)
            self.report.stopped, self.report.message = "error", str(err)
            self._stopping = True
            return
        except Exception as err:  # unforeseen: this item fails, uncached, and the job goes on
            budget.release(sum(reserved))
            self.cache.release_claims(self.owner, key)
            log.warning("%s failed (not cached, a re-run sends it again): %r", request.item_id, err)
            self.report.failed += 1
            self.report.uncached_failures += 1
            self._notify()
            return
        except BaseException:
            budget.release(sum(reserved))
            self.cache.release_claims(self.owner, key)
            raise
        cost = self.cost_of(feedback.input_tokens, feedback.output_tokens)
        feedback.cost = cost
        self.cache.put(key, request, self.teacher.name, self.teacher.model, feedback, claim_owner=self.owner)
        tokens = feedback.input_tokens + feedback.output_tokens
        budget.settle(sum(reserved), float(tokens) if budget.unit == "tokens" else (cost or 0.0))
        self.report.record(feedback)
        self._notify()

    async def _send(
        self,
        key: str,
        request: TeacherRequest,
        retry: RetryPolicy,
        may_repair: Callable[[RawReply, str], bool],
    ) -> Feedback:
        """The teacher's feedback, retrying transient errors (and renewing the claim); when retries run out
        the request is recorded as failed with the last error as its reason."""

        def count(attempt: int, err: TransientError, wait: float) -> None:
            self.report.retries += 1
            self.cache.renew_claim(key, self.owner, self.config.lease_s + wait)
            log.info("retry %d of %s after %.2fs: %s", attempt + 1, request.item_id, wait, err)

        try:
            return await retry.call(lambda: self.teacher.run(request, may_repair), on_retry=count)
        except TransientError as err:
            return failed_feedback(
                request, f"transient error after {retry.max_retries} retries: {err}", self.teacher.model
            )
