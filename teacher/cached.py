"""`CachedTeacher`: the `Teacher` interface, answering from a `FeedbackCache` when it can."""

from __future__ import annotations

import asyncio
import dataclasses

from teacher.cache import FeedbackCache, cache_key
from teacher.client import Teacher
from teacher.limits import RetryPolicy
from teacher.pricing import PriceTable
from teacher.records import Feedback, ProblemLike, TeacherRequest
from teacher.tasks import TeacherTasks


class CachedTeacher(TeacherTasks):
    """A hit sends nothing and returns the stored feedback (`cached=True`). Failures are stored with their
    reason; they are answered from the cache too unless `retry_failed`. Transient errors (429/5xx/timeouts)
    are retried when a `retry` policy is given (backoff honouring Retry-After; default: no retries) and, if
    they persist, raised as `TransientError` without caching anything (`*_many` return them as failed
    items, uncached, so the next call sends them again). Concurrent calls for one key send it once."""

    def __init__(
        self,
        teacher: Teacher,
        cache: FeedbackCache,
        prices: PriceTable | None = None,
        retry_failed: bool = False,
        retry: RetryPolicy | None = None,
    ):
        self.teacher, self.cache, self.retry_failed = teacher, cache, retry_failed
        self.retry = retry
        self.prices = prices or PriceTable()
        self._in_flight: dict[str, asyncio.Future[Feedback]] = {}

    def run_sync(self, coro):
        """Run a coroutine on the wrapped teacher's loop thread."""
        return self.teacher.run_sync(coro)

    def build(self, task: str, problem: ProblemLike, *args) -> TeacherRequest:
        return self.teacher.build(task, problem, *args)

    def key(self, request: TeacherRequest) -> str:
        return cache_key(self.teacher.name, self.teacher.model, request)

    def lookup(self, request: TeacherRequest) -> Feedback | None:
        hit = self.cache.get(self.key(request))
        if hit is None or (not hit.ok and self.retry_failed):
            return None
        return hit

    async def run(self, request: TeacherRequest) -> Feedback:
        hit = self.lookup(request)
        if hit is not None:
            return hit
        key = self.key(request)
        if key in self._in_flight:  # the same request already on its way: wait for its answer
            return dataclasses.replace(await asyncio.shield(self._in_flight[key]), cached=True)
        future = asyncio.get_running_loop().create_future()
        self._in_flight[key] = future
        try:
            feedback = await self._send(key, request)
        except asyncio.CancelledError:
            future.cancel()
            raise
        except BaseException as err:
            future.set_exception(err)
            future.exception()  # marked as retrieved: a future nobody waits on logs nothing
            raise
        else:
            future.set_result(feedback)
        finally:
            del self._in_flight[key]
        return feedback

    async def _send(self, key: str, request: TeacherRequest) -> Feedback:
        if self.retry is not None:
            feedback = await self.retry.call(lambda: self.teacher.run(request))
        else:
            feedback = await self.teacher.run(request)
        feedback.cost = self.prices.cost(self.teacher.model, feedback.input_tokens, feedback.output_tokens)
        self.cache.put(key, request, self.teacher.name, self.teacher.model, feedback)
        return feedback

    @property
    def name(self) -> str:
        return self.teacher.name

    @property
    def model(self) -> str:
        return self.teacher.model
