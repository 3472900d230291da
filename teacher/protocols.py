"""What a training loop may rely on from a teacher: a small protocol, so `align` types its dependency
without importing a concrete client. `Teacher` and `CachedTeacher` satisfy it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from teacher.records import Feedback, ProblemLike


@runtime_checkable
class TeacherLike(Protocol):
    """Synchronous batched teacher calls. Each returns one `Feedback` per item, in order; an item whose
    request failed comes back with `ok=False` and the reason in `failure`; job-wide errors
    (`teacher.records.JobWideError`) raise. At most `concurrency` requests are in flight."""

    @property
    def name(self) -> str: ...

    @property
    def model(self) -> str: ...

    def score_many(
        self,
        problems: Sequence[ProblemLike],
        sentence_lists: Sequence[Sequence[str]],
        concurrency: int = ...,
    ) -> list[Feedback]: ...

    def correct_many(
        self, problems: Sequence[ProblemLike], rationales: Sequence[str], concurrency: int = ...
    ) -> list[Feedback]: ...

    def judge_many(
        self,
        problems: Sequence[ProblemLike],
        rationales_a: Sequence[str],
        rationales_b: Sequence[str],
        concurrency: int = ...,
    ) -> list[Feedback]: ...


__all__ = ["TeacherLike"]
