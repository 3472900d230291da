"""`Teacher`: a backend plus the three tasks, and `make_teacher(spec)` that builds one from a spec string."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from typing import Any

from teacher import prompts
from teacher.backends.base import Backend
from teacher.names import spec_problem
from teacher.records import (
    SPEC_HELP,
    BadSpecError,
    Feedback,
    ItemError,
    ProblemLike,
    RawReply,
    TeacherRequest,
    TransientError,
    failed_feedback,
)
from teacher.tasks import TeacherTasks


class EventLoopThread:
    """A private event loop in a daemon thread, so synchronous callers can reuse one set of async clients
    (SDK clients are bound to the loop they first ran on)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True, name="teacher-loop")
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()


class Teacher(TeacherTasks):
    """Builds versioned requests, sends them through the backend and validates the replies.

    With `repair=True` a rejected reply is retried once with a message naming what was wrong; a second
    rejection is returned as a failed `Feedback` with its reason (never a guess). A request the provider
    refuses or answers with a garbled body (`ItemError`) is a failed `Feedback` too; transient and job-wide
    errors raise. The tasks, single and `*_many`, come from `TeacherTasks`.
    """

    def __init__(self, backend: Backend, repair: bool = True, params: dict | None = None, spec: str = ""):
        self.backend, self.repair, self.params, self.spec = backend, repair, params or {}, spec
        self._loop: EventLoopThread | None = None
        self._loop_lock = threading.Lock()

    def run_sync(self, coro: Coroutine[Any, Any, Any]) -> Any:
        """Run a coroutine of this teacher from synchronous code, on the teacher's own loop thread."""
        with self._loop_lock:
            if self._loop is None:
                self._loop = EventLoopThread()
        return self._loop.run(coro)

    @property
    def name(self) -> str:
        return self.backend.name

    @property
    def model(self) -> str:
        return self.backend.model

    def build(self, task: str, problem: ProblemLike, *args: Any) -> TeacherRequest:
        builder = {
            "score": prompts.score_request,
            "correct": prompts.correct_request,
            "judge": prompts.judge_request,
        }
        if task not in builder:
            raise ValueError(f"unknown teacher task {task!r}")
        return builder[task](problem, *args, params=self.params)

    async def run(
        self, request: TeacherRequest, may_repair: Callable[[RawReply, str], bool] | None = None
    ) -> Feedback:
        """Send one request (with at most one repair turn) and return validated feedback. `may_repair(first
        reply, failure)` is asked before a repair turn is sent (a caching job's budget answers it); a
        refused or unanswered repair turn leaves the first reply's failure, with its tokens counted."""
        try:
            reply = await self.backend.complete(request)
        except ItemError as err:
            return failed_feedback(request, str(err), self.model)
        feedback = prompts.parse_reply(request, reply)
        if feedback.ok or not self.repair:
            return feedback
        if may_repair is not None and not may_repair(reply, feedback.failure or ""):
            feedback.failure = f"{feedback.failure} (repair turn skipped: it could pass the budget)"
            return feedback
        followup = (
            ("assistant", reply.text or "(empty)"),
            ("user", prompts.repair_message(feedback.failure or "")),
        )
        try:
            second = await self.backend.complete(request, followup)
        except (ItemError, TransientError) as err:  # the first turn is paid: keep it, do not resend it
            feedback.failure = f"{feedback.failure} (repair turn not answered: {err})"
            return feedback
        repaired = prompts.parse_reply(request, second)
        repaired.input_tokens += reply.input_tokens
        repaired.output_tokens += reply.output_tokens
        repaired.latency_s += reply.latency_s
        if not repaired.ok:
            repaired.failure = f"{repaired.failure} (after one repair retry; first: {feedback.failure})"
        return repaired

    async def aclose(self) -> None:
        await self.backend.aclose()

    def __repr__(self) -> str:
        return f"Teacher({self.spec or self.backend!r})"


def make_backend(spec: str, **options: Any) -> Backend:
    """The backend a spec string names; options go to its constructor (api_key, base_url, timeout, ...)."""
    problem = spec_problem(spec)
    if problem:
        raise BadSpecError(problem)
    kind, _, rest = spec.partition(":")
    if kind == "reference":
        return __import__("teacher.backends.reference", fromlist=["x"]).ReferenceBackend(
            similarity=rest or "embedding", **options
        )
    if kind == "openai":
        from teacher.backends.openai_backend import OpenAIBackend

        return OpenAIBackend(rest, spec=spec, **options)
    if kind == "anthropic":
        from teacher.backends.anthropic_backend import AnthropicBackend

        return AnthropicBackend(rest, spec=spec, **options)
    if kind == "openai-compatible":
        url, _, model = rest.rpartition("#")
        from teacher.backends.openai_backend import OpenAICompatibleBackend

        return OpenAICompatibleBackend(model, base_url=url, spec=spec, **options)
    from teacher.backends.hf_backend import HFBackend  # "hf", the last backend spec_problem lets through

    return HFBackend(rest, **options)


def make_teacher(spec: str, repair: bool = True, params: dict | None = None, **options: Any) -> Teacher:
    """Build a `Teacher` from a spec such as `openai:gpt-4o` or `reference:lexical`."""
    return Teacher(make_backend(spec, **options), repair=repair, params=params, spec=spec)


__all__ = ["SPEC_HELP", "RawReply", "Teacher", "make_backend", "make_teacher"]
