"""Caching jobs: read items, send what is not cached under limits, record every result."""

from teacher.jobs.items import JobInputError, JobItem, JobProblem, read_items
from teacher.jobs.runner import JobConfig, JobReport, JobRunner, estimate_tokens

__all__ = [
    "JobConfig",
    "JobInputError",
    "JobItem",
    "JobProblem",
    "JobReport",
    "JobRunner",
    "estimate_tokens",
    "read_items",
]
