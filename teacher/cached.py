"""`CachedTeacher`: the `Teacher` interface, answering from a `FeedbackCache` when it can."""

from __future__ import annotations

from teacher.cache import FeedbackCache, cache_key
from teacher.client import Teacher
from teacher.limits import RetryPolicy
from teacher.pricing import PriceTable
from teacher.records import Feedback, ProblemLike, TeacherRequest


class CachedTeacher:
    """A hit sends nothing and returns the stored feedback (`cached=True`). Failures are stored with their
    reason; they are answered from the cache too unless `retry_failed`. Transient errors (429/5xx/timeouts)
    are retried when a `retry` policy is given (backoff honouring Retry-After; default: no retries) and, if
    they persist, raised as `TransientError` without caching anything."""

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

    def run_sync(self, coro):
        """Run a coroutine on the wrapped teacher's loop thread."""
        return self.teacher.run_sync(coro)

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
        if self.retry is not None:
            feedback = await self.retry.call(lambda: self.teacher.run(request))
        else:
            feedback = await self.teacher.run(request)
        feedback.cost = self.prices.cost(self.teacher.model, feedback.input_tokens, feedback.output_tokens)
        self.cache.put(self.key(request), request, self.teacher.name, self.teacher.model, feedback)
        return feedback

    async def ascore_sentences(self, problem: ProblemLike, sentences: list[str]) -> Feedback:
        return await self.run(self.teacher.build("score", problem, list(sentences)))

    async def acorrect(self, problem: ProblemLike, rationale: str) -> Feedback:
        return await self.run(self.teacher.build("correct", problem, rationale))

    async def ajudge(self, problem: ProblemLike, rationale_a: str, rationale_b: str) -> Feedback:
        return await self.run(self.teacher.build("judge", problem, rationale_a, rationale_b))

    def score_sentences(self, problem: ProblemLike, sentences: list[str]) -> Feedback:
        return self.teacher.run_sync(self.ascore_sentences(problem, sentences))

    def correct(self, problem: ProblemLike, rationale: str) -> Feedback:
        return self.teacher.run_sync(self.acorrect(problem, rationale))

    def judge(self, problem: ProblemLike, rationale_a: str, rationale_b: str) -> Feedback:
        return self.teacher.run_sync(self.ajudge(problem, rationale_a, rationale_b))

    @property
    def name(self) -> str:
        return self.teacher.name

    @property
    def model(self) -> str:
        return self.teacher.model
