"""Pluggable teacher clients, versioned prompts, a persistent feedback cache and caching jobs.

This package knows nothing about training: it turns (problem, rationale) requests into validated feedback.
Its names are imported on first use, so `ares-teacher --help` and `import teacher.records` stay instant.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from teacher.cache import FeedbackCache
    from teacher.cached import CachedTeacher
    from teacher.client import Teacher, make_teacher
    from teacher.protocols import TeacherLike
    from teacher.records import Feedback, JobWideError, TeacherRequest

_HOMES = {
    "CachedTeacher": "teacher.cached",
    "Feedback": "teacher.records",
    "FeedbackCache": "teacher.cache",
    "JobWideError": "teacher.records",
    "Teacher": "teacher.client",
    "TeacherLike": "teacher.protocols",
    "TeacherRequest": "teacher.records",
    "make_teacher": "teacher.client",
}
__all__ = [
    "CachedTeacher",
    "Feedback",
    "FeedbackCache",
    "JobWideError",
    "Teacher",
    "TeacherLike",
    "TeacherRequest",
    "make_teacher",
]


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'teacher' has no attribute {name!r}")
    value = getattr(importlib.import_module(_HOMES[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
