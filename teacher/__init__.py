"""Pluggable teacher clients, versioned prompts, a persistent feedback cache and caching jobs.

This package knows nothing about training: it turns (problem, rationale) requests into validated feedback.
"""

from teacher.cache import FeedbackCache
from teacher.cached import CachedTeacher
from teacher.client import Teacher, make_teacher
from teacher.protocols import TeacherLike
from teacher.records import Feedback, JobWideError, TeacherRequest

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
