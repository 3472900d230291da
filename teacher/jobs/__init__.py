"""Caching jobs: read items, send what is not cached under limits, record every result.

Names are imported on first use (the CLI reads items without loading the runner's machinery)."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from teacher.jobs.items import JobInputError, JobItem, JobProblem, read_items
    from teacher.jobs.runner import JobConfig, JobReport, JobRunner, estimate_tokens

_HOMES = {
    "JobConfig": "teacher.jobs.runner",
    "JobInputError": "teacher.jobs.items",
    "JobItem": "teacher.jobs.items",
    "JobProblem": "teacher.jobs.items",
    "JobReport": "teacher.jobs.runner",
    "JobRunner": "teacher.jobs.runner",
    "estimate_tokens": "teacher.jobs.runner",
    "read_items": "teacher.jobs.items",
}
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


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'teacher.jobs' has no attribute {name!r}")
    value = getattr(importlib.import_module(_HOMES[name]), name)
    globals()[name] = value
    return value
