"""Client-side limits for caching jobs: requests/tokens per minute, retry with backoff, and a dollar budget.

Providers enforce RPM/TPM limits and answer 429 when they are exceeded; we pace ourselves below them with
token buckets (one for requests, one for tokens) and retry transient failures with exponential backoff and
full jitter, waiting at least as long as the server's `Retry-After` says.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from teacher.records import BudgetExceededError, TransientError

T = TypeVar("T")


class TokenBucket:
    """`per_minute / 60` units per second, with bursts of at most `burst_s` seconds' worth (at least one
    unit). `acquire(n)` waits until the bucket holds min(n, capacity) units and then takes all `n`, so a
    request larger than the bucket leaves a debt that later requests wait out: the long-run rate is exact.
    Providers enforce per-minute limits over shorter windows too, hence the short default burst."""

    def __init__(
        self,
        per_minute: float,
        burst_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ):
        if per_minute <= 0:
            raise ValueError(f"a rate limit must be positive, got {per_minute} per minute")
        self.rate = per_minute / 60.0
        self.capacity = max(1.0, self.rate * burst_s)
        self.level = self.capacity
        self._clock, self._sleep = clock, sleep
        self._stamp = clock()
        self._lock = asyncio.Lock()

    def _refill(self) -> None:
        now = self._clock()
        self.level = min(self.capacity, self.level + (now - self._stamp) * self.rate)
        self._stamp = now

    def wait_time(self, n: float) -> float:
        """Seconds until `n` units (capped at capacity) are available; 0 if now."""
        self._refill()
        need = min(n, self.capacity) - self.level
        return max(0.0, need / self.rate)

    async def acquire(self, n: float = 1.0) -> None:
        async with self._lock:  # first come, first served
            while (delay := self.wait_time(n)) > 0:
                await self._sleep(delay)
            self.level -= n


class RateLimiter:
    """Requests-per-minute and tokens-per-minute pacing; either may be None (unlimited)."""

    def __init__(
        self,
        rpm: float | None = None,
        tpm: float | None = None,
        burst_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ):
        self.requests = TokenBucket(rpm, burst_s, clock, sleep) if rpm else None
        self.tokens = TokenBucket(tpm, burst_s, clock, sleep) if tpm else None

    async def acquire(self, estimated_tokens: int) -> None:
        if self.requests is not None:
            await self.requests.acquire(1)
        if self.tokens is not None:
            await self.tokens.acquire(estimated_tokens)


@dataclass
class RetryPolicy:
    """Exponential backoff with full jitter: attempt k (0-based) waits uniform(0, min(cap, base * 2**k)),
    and never less than the server's Retry-After."""

    max_retries: int = field(default=6, metadata={"help": "Retries of a transient failure before giving up."})
    base_s: float = field(default=0.5, metadata={"help": "First backoff ceiling in seconds."})
    cap_s: float = field(default=60.0, metadata={"help": "Largest backoff in seconds."})
    seed: int | None = field(default=None, metadata={"help": "Seed of the jitter (tests)."})

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        ceiling = min(self.cap_s, self.base_s * (2**attempt))
        wait = self._rng.uniform(0, ceiling)
        return max(wait, retry_after or 0.0)

    async def call(
        self,
        fn: Callable[[], Awaitable[T]],
        on_retry: Callable[[int, TransientError, float], None] | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> T:
        """Await `fn()`, retrying `TransientError` up to `max_retries` times; the last error propagates."""
        attempt = 0
        while True:
            try:
                return await fn()
            except TransientError as err:
                if attempt >= self.max_retries:
                    raise
                wait = self.delay(attempt, err.retry_after)
                if on_retry is not None:
                    on_retry(attempt, err, wait)
                await sleep(wait)
                attempt += 1


class Budget:
    """A dollar (or token) budget shared by concurrent requests: `limit` for this run, and optionally
    `total_limit` for everything ever spent through the cache (`spent_before` is what earlier runs spent).

    Before a request is launched it reserves its estimated worst-case cost; `settle` replaces the estimate by
    the actual cost. A request is refused (BudgetExceededError) when what is spent + reserved + its estimate
    would pass a limit, so in-flight requests can finish without overshooting by more than their estimation
    error (input tokens are estimated from characters; output is bounded by `max_tokens`).
    """

    def __init__(
        self,
        limit: float | None,
        unit: str = "usd",
        total_limit: float | None = None,
        spent_before: float = 0.0,
    ):
        self.limit, self.unit = limit, unit
        self.total_limit, self.spent_before = total_limit, spent_before
        self.spent = 0.0
        self.reserved = 0.0
        self.requests = 0
        self.reached: str | None = None  # "run" or "total" once a request was refused

    def reserve(self, estimate: float) -> None:
        committed = self.spent + self.reserved + estimate
        if self.limit is not None and committed > self.limit:
            self.reached = "run"
            raise self.exceeded()
        if self.total_limit is not None and self.spent_before + committed > self.total_limit:
            self.reached = "total"
            raise self.exceeded()
        self.reserved += estimate

    def exceeded(self) -> BudgetExceededError:
        """The error (and the message a job ends with) for the limit reached, with the spend as of now."""
        if self.reached == "total":
            limit = self.total_limit or 0.0
            message = (
                f"total budget of ${limit:.2f} for this cache reached: spent ${self.spent_before:.4f} before "
                f"this run and ${self.spent:.4f} in it on {self.requests} requests; raise --budget-total to "
                "continue (cached work is kept)"
            )
        elif self.unit == "tokens":
            limit = self.limit or 0.0
            message = (
                f"token budget of {limit:.0f} reached: spent {self.spent:.0f} tokens on {self.requests} "
                "requests; raise --budget-tokens to continue (cached work is kept)"
            )
        else:
            limit = self.limit or 0.0
            message = None
        return BudgetExceededError(self.spent, limit, self.requests, message)

    def settle(self, estimate: float, actual: float) -> None:
        self.reserved = max(0.0, self.reserved - estimate)
        self.spent += actual
        self.requests += 1

    def release(self, estimate: float) -> None:
        """Drop a reservation whose request never reached the provider."""
        self.reserved = max(0.0, self.reserved - estimate)

    @property
    def exhausted(self) -> bool:
        return self.limit is not None and self.spent >= self.limit
