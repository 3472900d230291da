"""Batch mode: send a job's uncached requests through the OpenAI Batch API or Anthropic Message Batches
(half price, results within 24 h), persist the batch ids in the cache, poll, and file the results.

A restarted job first collects the batches it finds open in the cache for the same teacher and task, and
submits only requests that are neither cached nor inside an open batch, so nothing is paid for twice.
Batch mode has no repair turn: a rejected reply is cached as failed with its reason.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from abc import ABC, abstractmethod
from typing import Any

from teacher.backends.base import Backend
from teacher.cache import BatchEntry
from teacher.jobs.items import JobItem
from teacher.jobs.runner import JobReport, JobRunner, estimate_tokens
from teacher.prompts import parse_reply
from teacher.records import BudgetExceededError, Feedback, RawReply, TeacherError, TeacherRequest

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
    async def submit(self, lines: list[dict]) -> str: ...

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

    async def submit(self, lines: list[dict]) -> str:
        data = "".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines).encode()
        uploaded = await self.client.files.create(file=("batch.jsonl", data), purpose="batch")
        batch = await self.client.batches.create(
            input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
        return batch.id

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
                if text.strip():
                    row = json.loads(text)
                    out[row["custom_id"]] = self._reply(row)
        return out

    @staticmethod
    def _reply(row: dict) -> RawReply | str:
        response = row.get("response") or {}
        if row.get("error") or response.get("status_code") != 200:
            error = row.get("error") or (response.get("body") or {}).get("error") or {}
            return f"batch request failed ({response.get('status_code')}): {error.get('message', error)}"
        body = response["body"]
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

    async def submit(self, lines: list[dict]) -> str:
        batch = await self.client.messages.batches.create(requests=lines)
        return batch.id

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
    raise TeacherError(
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
        if runner.prices.cost(runner.teacher.model, 1, 1) is None:
            report.cost_known = False
        work = runner.pending(items)
        open_ids = cache.open_batches(*self._ident)
        in_flight = {e.key for b in open_ids for e in cache.batch_entries(b)}
        to_submit = [(k, r) for k, r in work if k not in in_flight]
        if in_flight:
            log.warning("collecting %d open batch(es) from an earlier run", len(open_ids))
        try:
            open_ids += await self._submit(to_submit)
            open_ids = await self._collect(open_ids)
        finally:
            report.elapsed_s = time.perf_counter() - start
        waiting = sum(len(cache.batch_entries(b)) for b in open_ids)
        report.skipped = max(0, report.total - report.cached - report.sent)
        if waiting:
            report.stopped = report.stopped or ("interrupted" if runner._stopping else "pending")
            report.message = (
                f"{len(open_ids)} batch(es) with {waiting} requests still running (ids kept in the cache); "
                "re-run the same command to collect them"
            )
        return report

    async def _submit(self, work: list[tuple[str, TeacherRequest]]) -> list[str]:
        runner, report = self.runner, self.runner.report
        budget = runner._budget()
        accepted: list[tuple[str, TeacherRequest]] = []
        for key, request in work:
            est_in, est_out = estimate_tokens(request)
            if budget.unit == "tokens":
                estimate = float(est_in + est_out)
            else:
                estimate = runner.prices.cost(runner.teacher.model, est_in, est_out, batch=True) or 0.0
            try:
                budget.reserve(estimate)
            except BudgetExceededError as err:
                report.stopped, report.message = "budget", str(err)
                break
            accepted.append((key, request))
        ids = []
        for start in range(0, len(accepted), self.chunk):
            if runner._stopping:
                break
            part = accepted[start : start + self.chunk]
            lines = [self.provider.line(r, custom_id=k) for k, r in part]  # sha256 hex: 64 chars, [0-9a-f]
            batch_id = await self.provider.submit(lines)
            entries = [BatchEntry(k, k, r.item_id, r.prompt_version, r.expect) for k, r in part]
            runner.cache.add_batch(batch_id, *self._ident, entries)
            log.warning("submitted batch %s with %d requests", batch_id, len(part))
            ids.append(batch_id)
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
            report.cost += feedback.cost or 0.0
            report.input_tokens += feedback.input_tokens
            report.output_tokens += feedback.output_tokens
            if feedback.ok:
                report.done += 1
            else:
                report.failed += 1
        cache.set_batch_status(batch_id, "collected")
        runner._notify()
