"""Batch mode: send a job's uncached requests through the OpenAI Batch API or Anthropic Message Batches
(half price, results within 24 h), persist the batch ids in the cache, poll, and file the results.

A batch is recorded in the cache as an intent (with a client-side tag) before it is submitted, and
confirmed with the provider's id once accepted. A restarted job first resolves its intents (a job killed
between the provider accepting a batch and the local record finds the batch again: by the tag in the batch's
metadata on OpenAI, by the custom ids of its results on Anthropic), collects the batches open for the same
teacher and task, and submits only requests that are neither cached nor in a live batch, so nothing is paid
for twice. Batch mode has no repair turn: a rejected reply is cached as failed with its reason.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from abc import ABC, abstractmethod
from datetime import datetime
from typing import Any

from teacher.backends.base import Backend, status_error
from teacher.cache import BatchEntry
from teacher.jobs.items import JobItem
from teacher.jobs.runner import JobReport, JobRunner, estimate_tokens
from teacher.prompts import parse_reply
from teacher.records import (
    BudgetExceededError,
    Feedback,
    RawReply,
    TeacherError,
    TeacherRequest,
    UsageError,
)

TAG_FIELD = "ares_tag"  # OpenAI batch metadata key holding our intent's tag
CLOCK_SKEW_S = 600.0  # how far before an intent's local time a provider's batch may be stamped

log = logging.getLogger(__name__)


class BatchProvider(ABC):
    """One provider's batch protocol, through its official SDK client (the backend's)."""

    max_requests: int = 10_000

    def __init__(self, backend: Backend):
        self.backend = backend
        self.client: Any = backend._client  # the backend's SDK client: same key, base_url, timeout

    @abstractmethod
    def line(self, request: TeacherRequest, custom_id: str) -> dict: ...

    @abstractmethod
    async def submit(self, lines: list[dict], tag: str) -> str: ...

    @abstractmethod
    async def find(self, tag: str, since: float, keys: set[str], known: set[str]) -> tuple[str, str | None]:
        """Whether the provider accepted the intent `tag` (recorded at `since`, with custom ids `keys`):
        ('found', batch id), ('absent', None), or ('unsure', None) while a candidate cannot be checked yet.
        `known` holds the batch ids the cache already knows."""

    @abstractmethod
    async def status(self, batch_id: str) -> str:
        """'running', 'ended' (results can be read) or 'failed' (no results will come)."""

    @abstractmethod
    async def results(self, batch_id: str) -> dict[str, RawReply | str]:
        """custom_id -> reply, or the reason the request failed."""


class OpenAIBatches(BatchProvider):
    """OpenAI Batch API: upload a JSONL file of chat-completion bodies, create the batch, read the output."""

    def line(self, request: TeacherRequest, custom_id: str) -> dict:
        body = self.backend.body(request)  # type: ignore[attr-defined]
        return {"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions", "body": body}

    async def submit(self, lines: list[dict], tag: str) -> str:
        data = "".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines).encode()
        uploaded = await self.client.files.create(file=("batch.jsonl", data), purpose="batch")
        batch = await self.client.batches.create(
            input_file_id=uploaded.id,
            endpoint="/v1/chat/completions",
            completion_window="24h",
            metadata={TAG_FIELD: tag},
        )
        return batch.id

    async def find(self, tag: str, since: float, keys: set[str], known: set[str]) -> tuple[str, str | None]:
        async for batch in self.client.batches.list(limit=100):  # newest first
            if batch.created_at < since - CLOCK_SKEW_S:
                break
            if (batch.metadata or {}).get(TAG_FIELD) == tag:
                return "found", batch.id
        return "absent", None

    async def status(self, batch_id: str) -> str:
        batch = await self.client.batches.retrieve(batch_id)
        if batch.status == "completed" or (batch.status in ("expired", "cancelled") and batch.output_file_id):
            return "ended"
        if batch.status in ("failed", "expired", "cancelled"):
            return "failed"
        return "running"

    async def results(self, batch_id: str) -> dict[str, RawReply | str]:
        batch = await self.client.batches.retrieve(batch_id)
        out: dict[str, RawReply | str] = {}
        for file_id in (batch.output_file_id, batch.error_file_id):
            if not file_id:
                continue
            content = await self.client.files.content(file_id)
            for text in content.text.splitlines():
                if not text.strip():
                    continue
                try:
                    row = json.loads(text)
                    out[row["custom_id"]] = self._reply(row)
                except (ValueError, KeyError, TypeError):  # its request is filed as missing, with a reason
                    log.warning("unreadable line in the results of batch %s: %.200s", batch_id, text)
        return out

    @staticmethod
    def _reply(row: dict) -> RawReply | str:
        response = row.get("response") or {}
        if row.get("error") or response.get("status_code") != 200:
            error = row.get("error") or (response.get("body") or {}).get("error") or {}
            return f"batch request failed ({response.get('status_code')}): {error.get('message', error)}"
        body = response.get("body")
        if not isinstance(body, dict) or not body.get("choices"):
            return f"batch request answered 200 without choices: {json.dumps(body)[:200]!r}"
        choice, usage = body["choices"][0], body.get("usage") or {}
        return RawReply(
            text=choice["message"].get("content") or "",
            input_tokens=usage.get("prompt_tokens", 0),
            output_tokens=usage.get("completion_tokens", 0),
            model=body.get("model", ""),
            finish_reason=choice.get("finish_reason") or "",
        )


class AnthropicBatches(BatchProvider):
    """Anthropic Message Batches: one create call with every request's Messages params."""

    def line(self, request: TeacherRequest, custom_id: str) -> dict:
        params = self.backend.body(request)  # type: ignore[attr-defined]
        params.update(params.pop("extra_body", {}))  # batch params are plain request fields
        return {"custom_id": custom_id, "params": params}

    async def submit(self, lines: list[dict], tag: str) -> str:
        batch = await self.client.messages.batches.create(requests=lines)  # no batch metadata here
        return batch.id

    async def find(self, tag: str, since: float, keys: set[str], known: set[str]) -> tuple[str, str | None]:
        """Message Batches carry no metadata: a candidate is a batch stamped after the intent, unknown to
        the cache, with as many requests; it is ours when its results hold exactly our custom ids, which
        can be read once it ended (until then: 'unsure', and nothing is submitted again)."""
        unsure = False
        async for batch in self.client.messages.batches.list(limit=100):  # newest first
            created = batch.created_at.timestamp() if isinstance(batch.created_at, datetime) else 0.0
            if created < since - CLOCK_SKEW_S:
                break
            counts = batch.request_counts
            n = counts.processing + counts.succeeded + counts.errored + counts.canceled + counts.expired
            if batch.id in known or n != len(keys):
                continue
            if batch.processing_status != "ended":
                unsure = True
                continue
            ids = {entry.custom_id async for entry in await self.client.messages.batches.results(batch.id)}
            if ids == keys:
                return "found", batch.id
        return ("unsure" if unsure else "absent"), None

    async def status(self, batch_id: str) -> str:
        batch = await self.client.messages.batches.retrieve(batch_id)
        return "ended" if batch.processing_status == "ended" else "running"

    async def results(self, batch_id: str) -> dict[str, RawReply | str]:
        out: dict[str, RawReply | str] = {}
        async for entry in await self.client.messages.batches.results(batch_id):
            result = entry.result
            if result.type != "succeeded":
                detail = getattr(getattr(result, "error", None), "error", None)
                out[entry.custom_id] = (
                    f"batch request {result.type}: {getattr(detail, 'message', '')}".strip()
                )
                continue
            message = result.message
            parts = [
                json.dumps(b.input) if b.type == "tool_use" else b.text
                for b in message.content
                if b.type in ("tool_use", "text")
            ]
            out[entry.custom_id] = RawReply(
                text="\n".join(parts),
                input_tokens=message.usage.input_tokens,
                output_tokens=message.usage.output_tokens,
                model=message.model,
                finish_reason=message.stop_reason or "",
            )
        return out


def batch_provider(backend: Backend) -> BatchProvider:
    """The batch protocol of a backend; only OpenAI and Anthropic have one."""
    if backend.name == "openai":
        return OpenAIBatches(backend)
    if backend.name == "anthropic":
        return AnthropicBatches(backend)
    raise UsageError(
        f"--batch needs an openai: or anthropic: teacher, not {backend.name!r} (run without --batch)"
    )


class BatchJob:
    """Submit, persist, poll and collect. Uses the runner's teacher, cache, prices, budget and stop flag."""

    def __init__(self, runner: JobRunner, poll_s: float = 30.0, wait: bool = True, chunk: int | None = None):
        self.runner, self.poll_s, self.wait = runner, poll_s, wait
        self.provider = batch_provider(runner.teacher.backend)
        self.chunk = chunk or self.provider.max_requests

    @property
    def _ident(self) -> tuple[str, str, str]:
        t = self.runner.teacher
        return t.name, t.model, self.runner.task

    async def run(self, items: list[JobItem]) -> JobReport:
        runner, cache = self.runner, self.runner.cache
        start = time.perf_counter()
        runner.report = report = JobReport(total=len(items))
        if runner.cost_of(1, 1) is None:
            report.cost_known = False
        work = runner.pending(items)
        try:
            unsure = await self._resolve_intents()
            open_ids = cache.open_batches(*self._ident)
            if open_ids:
                log.warning("collecting %d open batch(es) from an earlier run", len(open_ids))
            open_ids += await self._submit(work)
            open_ids = await self._collect(open_ids)
        finally:
            report.elapsed_s = time.perf_counter() - start
        waiting = sum(len(cache.batch_entries(b)) for b in open_ids) + sum(n for _, _, n in unsure)
        report.skipped = max(0, report.total - report.cached - report.sent)
        if waiting:
            report.stopped = report.stopped or ("interrupted" if runner._stopping else "pending")
            report.message = (
                f"{len(open_ids) + len(unsure)} batch(es) with {waiting} requests still running (ids kept in "
                "the cache); re-run the same command to collect them"
            )
        return report

    async def _resolve_intents(self) -> list[tuple[str, float, int]]:
        """Settle the batches an earlier run recorded but did not see accepted; returns those still unsure."""
        cache, unsure = self.runner.cache, []
        for tag, since, n in cache.intents(*self._ident):
            keys = {e.custom_id for e in cache.batch_entries(f"intent:{tag}")}
            state, batch_id = await self.provider.find(tag, since, keys, cache.known_batch_ids())
            if state == "found" and batch_id is not None:
                log.warning("found batch %s submitted by an interrupted run; collecting it", batch_id)
                cache.confirm_batch(tag, batch_id)
            elif state == "absent":
                cache.drop_intent(tag)
            else:
                unsure.append((tag, since, n))
        return unsure

    async def _submit(self, work: list[tuple[str, TeacherRequest]]) -> list[str]:
        runner, report, cache = self.runner, self.runner.report, self.runner.cache
        runner.budget = budget = runner.make_budget()
        accepted: list[tuple[str, TeacherRequest, float]] = []
        for key, request in work:
            estimate = runner.estimate(budget, estimate_tokens(request), batch=True)
            try:
                budget.reserve(estimate)
            except BudgetExceededError:
                report.stopped = "budget"
                break
            accepted.append((key, request, estimate))
        ids = []
        for start in range(0, len(accepted), self.chunk):
            if runner._stopping:
                break
            part = accepted[start : start + self.chunk]
            tag = uuid.uuid4().hex
            entries = [BatchEntry(k, k, r.item_id, r.prompt_version, r.expect) for k, r, _ in part]
            kept = {e.key for e in cache.add_batch_intent(tag, *self._ident, entries, runner.owner)}
            for key, _, estimate in part:
                if key not in kept:  # another job has it by now
                    budget.release(estimate)
            lines = [self.provider.line(r, custom_id=k) for k, r, _ in part if k in kept]
            if not lines:
                continue
            try:
                batch_id = await self.provider.submit(lines, tag)
            except Exception as err:
                status = getattr(err, "status_code", None)
                if status is None:  # unknown whether the provider accepted it: the intent stays
                    raise TeacherError(
                        f"submitting a batch failed ({type(err).__name__}: {err}); re-run to check whether "
                        "the provider accepted it (nothing is submitted twice)"
                    ) from None
                cache.drop_intent(tag)  # refused: nothing was accepted
                body = getattr(getattr(err, "response", None), "text", "") or str(err)
                raise status_error(self.provider.backend.name, runner.teacher.model, status, body) from None
            cache.confirm_batch(tag, batch_id)
            log.warning("submitted batch %s with %d requests", batch_id, len(lines))
            ids.append(batch_id)
        if report.stopped == "budget":
            submitted = sum(len(cache.batch_entries(b)) for b in ids)
            if budget.unit == "tokens":
                head, estimate = f"token budget of {budget.limit:.0f}", f"{budget.reserved:.0f} tokens"
            elif budget.reached == "total":
                head = f"total budget of ${budget.total_limit:.2f} for this cache (${budget.spent_before:.4f} spent before)"
                estimate = f"${budget.reserved:.4f}"
            else:
                head, estimate = f"budget of ${budget.limit:.2f}", f"${budget.reserved:.4f}"
            flag = {"tokens": "--budget-tokens"}.get(
                budget.unit, "--budget-total" if budget.reached == "total" else "--budget"
            )
            report.message = (
                f"{head} reached: this run submitted {submitted} requests estimated at {estimate} (batch "
                f"price; paid as their results arrive); raise {flag} to continue (cached work is kept)"
            )
        return ids

    async def _collect(self, open_ids: list[str]) -> list[str]:
        """Poll until every batch ended (or once, without `wait`); returns the ids still open."""
        while open_ids:
            still = []
            for batch_id in open_ids:
                state = await self.provider.status(batch_id)
                if state == "running":
                    still.append(batch_id)
                    continue
                self._file(batch_id, await self.provider.results(batch_id) if state == "ended" else {})
            open_ids = still
            if not open_ids or not self.wait or self.runner._stopping:
                break
            await asyncio.sleep(self.poll_s)
        return open_ids

    def _file(self, batch_id: str, results: dict[str, RawReply | str]) -> None:
        """Write every request of an ended batch to the cache (missing ones as failed), then close it."""
        runner, report, cache = self.runner, self.runner.report, self.runner.cache
        name, model, task = self._ident
        for entry in cache.batch_entries(batch_id):
            request = TeacherRequest(
                task=task,
                prompt_version=entry.prompt_version,
                system="",
                user_text="",
                expect=entry.expect,
                item_id=entry.item_id or "",
            )
            got = results.get(entry.custom_id, f"missing from the results of batch {batch_id}")
            if isinstance(got, RawReply):
                feedback = parse_reply(request, got)
                feedback.cost = runner.prices.cost(model, got.input_tokens, got.output_tokens, batch=True)
            else:
                feedback = Feedback(
                    task=task, ok=False, failure=got, model=model, prompt_version=entry.prompt_version
                )
            cache.put(entry.key, request, name, model, feedback)
            report.record(feedback)
        cache.set_batch_status(batch_id, "collected")
        runner._notify()
