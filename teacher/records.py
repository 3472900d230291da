"""Typed records that cross the teacher's boundary: requests, raw replies, feedback, errors."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from teacher.names import SPEC_HELP, TASKS  # noqa: F401  (re-exported: the records' vocabulary)


@runtime_checkable
class ProblemLike(Protocol):
    """What the teacher needs of a problem; `align.data.Problem` satisfies it."""

    id: str
    question: str
    choices: tuple[str, ...]
    answer: int
    context: str
    image: Path | None
    lecture: str
    solution: str


@dataclass(frozen=True)
class TeacherRequest:
    """One provider-neutral request. `payload` is the structured input (question, sentences, ...) the prompt
    was rendered from; offline backends read it instead of the text."""

    task: str
    prompt_version: str
    system: str
    user_text: str
    images: tuple[bytes, ...] = ()
    schema: dict[str, Any] | None = None
    params: dict[str, Any] = field(default_factory=dict)
    expect: int | None = None
    item_id: str = ""
    payload: dict[str, Any] = field(default_factory=dict)

    def fingerprint(self) -> str:
        """sha256 over everything that changes the answer (images by their hash); no client settings."""
        body = {
            "task": self.task,
            "prompt_version": self.prompt_version,
            "system": self.system,
            "user_text": self.user_text,
            "images": [hashlib.sha256(b).hexdigest() for b in self.images],
            "schema": self.schema,
            "params": self.params,
            "expect": self.expect,
        }
        return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


@dataclass
class RawReply:
    """What a backend returned, before parsing."""

    text: str
    input_tokens: int = 0
    output_tokens: int = 0
    model: str = ""
    latency_s: float = 0.0
    finish_reason: str = ""


@dataclass
class Feedback:
    """Validated teacher feedback for one request. Exactly one payload field is set when `ok`:
    `scores` (task score), `text` (task correct) or `verdict` (task judge: "A", "B" or "tie")."""

    task: str
    ok: bool
    failure: str | None = None
    scores: list[float] | None = None
    text: str | None = None
    verdict: str | None = None
    raw: str = ""
    model: str = ""
    prompt_version: str = ""
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float | None = None
    latency_s: float = 0.0
    cached: bool = False

    def payload(self) -> dict[str, Any]:
        return {"scores": self.scores, "text": self.text, "verdict": self.verdict}


class TeacherError(RuntimeError):
    """Base class of the teacher's errors."""


class JobWideError(TeacherError):
    """A failure that is not about one request (a missing or rejected key, an unknown model, the budget): it
    stops a whole job, and `*_many` raise it instead of failing one item."""


class ItemError(TeacherError):
    """The provider refused or garbled the answer to one request (a 400, a body that is not the protocol's
    JSON, no choices): that item is recorded as failed with this reason and the job goes on."""

    def __init__(self, message: str, status: int | None = None, excerpt: str = ""):
        detail = f": {excerpt!r}" if excerpt else ""
        super().__init__(f"{message}{detail}")
        self.status, self.excerpt = status, excerpt


class UsageError(TeacherError, ValueError):
    """A setting the user must change before anything can be sent (a flag combination that cannot work, a
    dollar budget for a model without a price); `ares-teacher` exits 2 with its message."""


class BadSpecError(UsageError):
    """A teacher spec string that cannot be parsed."""


class AuthError(JobWideError):
    """The provider rejected the key (401) or its permissions (403)."""


class MissingAPIKeyError(JobWideError):
    """The environment variable holding the provider's key is not set."""

    def __init__(self, variable: str, spec: str):
        super().__init__(f"{variable} is not set: export it or pass api_key=... (teacher spec {spec!r})")
        self.variable = variable


class UnknownModelError(JobWideError):
    """The provider does not know the model."""


class TransientError(TeacherError):
    """A failure worth retrying (429, 5xx, timeout); `retry_after` in seconds when the server said."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class BudgetExceededError(JobWideError):
    """The job's budget would be exceeded by the next request. The message names the limit, what was spent
    and the flag that raises it."""

    def __init__(self, spent: float, budget: float, requests: int, message: str | None = None):
        super().__init__(
            message
            or f"budget of ${budget:.2f} reached: spent ${spent:.4f} on {requests} requests; "
            "raise --budget to continue (cached work is kept)"
        )
        self.spent, self.budget, self.requests = spent, budget, requests


def failed_feedback(request: TeacherRequest, reason: str, model: str = "") -> Feedback:
    """The failed `Feedback` of a request that got no usable reply, with the reason."""
    return Feedback(
        task=request.task, ok=False, failure=reason, model=model, prompt_version=request.prompt_version
    )
