"""The three teacher tasks over any `build` + `run`, one at a time or many at once under a bound.

`Teacher` and `CachedTeacher` both inherit this, so align gets one interface (typed by
`teacher.protocols.TeacherLike`) and never builds its own fan-out. In `*_many` an item whose request raised
(a 400, a garbled body, a transient error that outlived its retries, an unreadable image) comes back as a
failed `Feedback` with the reason; only job-wide errors (`JobWideError`: a missing or rejected key, an unknown
model, the budget) raise, after the requests still in flight are cancelled.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Coroutine, Sequence
from typing import Any

from teacher.records import (
    Feedback,
    JobWideError,
    ProblemLike,
    TeacherRequest,
    TransientError,
    failed_feedback,
)

DEFAULT_CONCURRENCY = 16


def item_failure_reason(err: Exception) -> str:
    """The recorded reason of a request that raised a per-item error."""
    if isinstance(err, TransientError):
        return f"transient error: {err}"
    return f"request failed: {type(err).__name__}: {err}"


class TeacherTasks(ABC):
    """score / correct / judge, sync and async, single and `*_many`, over `build` and `run`."""

    @abstractmethod
    def build(self, task: str, problem: ProblemLike, *args: Any) -> TeacherRequest: ...

    @abstractmethod
    async def run(self, request: TeacherRequest) -> Feedback: ...

    @abstractmethod
    def run_sync(self, coro: Coroutine[Any, Any, Any]) -> Any: ...

    @property
    @abstractmethod
    def model(self) -> str: ...

    # -- one request --------------------------------------------------------------------------------------
    async def ascore_sentences(self, problem: ProblemLike, sentences: Sequence[str]) -> Feedback:
        return await self.run(self.build("score", problem, list(sentences)))

    async def acorrect(self, problem: ProblemLike, rationale: str) -> Feedback:
        return await self.run(self.build("correct", problem, rationale))

    async def ajudge(self, problem: ProblemLike, rationale_a: str, rationale_b: str) -> Feedback:
        return await self.run(self.build("judge", problem, rationale_a, rationale_b))

    def score_sentences(self, problem: ProblemLike, sentences: Sequence[str]) -> Feedback:
        return self.run_sync(self.ascore_sentences(problem, sentences))

    def correct(self, problem: ProblemLike, rationale: str) -> Feedback:
        return self.run_sync(self.acorrect(problem, rationale))

    def judge(self, problem: ProblemLike, rationale_a: str, rationale_b: str) -> Feedback:
        return self.run_sync(self.ajudge(problem, rationale_a, rationale_b))

    # -- many requests ------------------------------------------------------------------------------------
    async def arun_many(
        self,
        task: str,
        problems: Sequence[ProblemLike],
        arguments: Sequence[tuple[Any, ...]],
        concurrency: int = DEFAULT_CONCURRENCY,
    ) -> list[Feedback]:
        """One `Feedback` per problem, in order, with at most `concurrency` requests in flight."""
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            raise ValueError(f"concurrency must be an integer of at least 1, got {concurrency!r}")
        if len(problems) != len(arguments):
            raise ValueError(
                f"{task}_many got {len(problems)} problems but {len(arguments)} argument lists; "
                "they must pair up one to one"
            )
        gate = asyncio.Semaphore(concurrency)

        async def one(problem: ProblemLike, args: tuple[Any, ...]) -> Feedback:
            try:
                request = self.build(task, problem, *args)
            except Exception as err:  # e.g. an image that cannot be read: this item only
                stub = TeacherRequest(task, "", "", "", item_id=str(getattr(problem, "id", "")))
                return failed_feedback(stub, f"request not built: {type(err).__name__}: {err}", self.model)
            if task == "score" and not request.expect:
                return failed_feedback(request, "no sentences to score", self.model)
            async with gate:
                try:
                    return await self.run(request)
                except JobWideError:
                    raise
                except Exception as err:
                    return failed_feedback(request, item_failure_reason(err), self.model)

        tasks = [asyncio.ensure_future(one(p, a)) for p, a in zip(problems, arguments, strict=True)]
        try:
            return list(await asyncio.gather(*tasks))
        except BaseException:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise

    def score_many(
        self,
        problems: Sequence[ProblemLike],
        sentence_lists: Sequence[Sequence[str]],
        concurrency: int = DEFAULT_CONCURRENCY,
    ) -> list[Feedback]:
        """Sentence scores for every (problem, sentences) pair; an empty sentence list fails unsent."""
        arguments = [(list(s),) for s in sentence_lists]
        return self.run_sync(self.arun_many("score", problems, arguments, concurrency))

    def correct_many(
        self,
        problems: Sequence[ProblemLike],
        rationales: Sequence[str],
        concurrency: int = DEFAULT_CONCURRENCY,
    ) -> list[Feedback]:
        """A corrected rationale for every (problem, rationale) pair."""
        arguments = [(r,) for r in rationales]
        return self.run_sync(self.arun_many("correct", problems, arguments, concurrency))

    def judge_many(
        self,
        problems: Sequence[ProblemLike],
        rationales_a: Sequence[str],
        rationales_b: Sequence[str],
        concurrency: int = DEFAULT_CONCURRENCY,
    ) -> list[Feedback]:
        """A verdict ("A", "B" or "tie") for every (problem, rationale A, rationale B) triple, in that order
        (call again with A and B swapped to control for position bias)."""
        if len(rationales_a) != len(rationales_b):
            raise ValueError(
                f"judge_many got {len(rationales_a)} rationales A but {len(rationales_b)} rationales B"
            )
        arguments = list(zip(rationales_a, rationales_b, strict=True))
        return self.run_sync(self.arun_many("judge", problems, arguments, concurrency))
