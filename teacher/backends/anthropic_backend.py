"""Anthropic Messages through the official SDK. Structured output by forcing a tool whose input schema is
the task's JSON schema; the tool input becomes the reply text."""

from __future__ import annotations

import json
import os
import time

import anthropic
from anthropic.types import Message

from teacher.backends.base import (
    Backend,
    b64,
    image_media_type,
    parsed_body,
    retry_after_seconds,
    status_error,
)
from teacher.records import MissingAPIKeyError, RawReply, TeacherRequest, TransientError


class AnthropicBackend(Backend):
    name = "anthropic"

    def __init__(
        self,
        model: str,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: float = 120.0,
        structured: bool = True,
        spec: str = "",
    ):
        super().__init__(model)
        key = api_key or os.environ.get("ANTHROPIC_API_KEY")
        if not key:
            raise MissingAPIKeyError("ANTHROPIC_API_KEY", spec or f"anthropic:{model}")
        self.structured = structured
        self._client = anthropic.AsyncAnthropic(
            api_key=key, base_url=base_url, timeout=timeout, max_retries=0
        )

    def body(self, request: TeacherRequest, followup: tuple[tuple[str, str], ...] = ()) -> dict:
        """The Messages request body (also the `params` of one Message Batches request)."""
        content: list[dict] = [
            {
                "type": "image",
                "source": {"type": "base64", "media_type": image_media_type(img), "data": b64(img)},
            }
            for img in request.images
        ]
        content.append({"type": "text", "text": request.user_text})
        messages = [{"role": "user", "content": content}] + [{"role": r, "content": t} for r, t in followup]
        params = dict(request.params)
        body = {
            "model": self.model,
            "system": request.system,
            "messages": messages,
            "max_tokens": params.pop("max_tokens", 1024),
        }
        if params:  # sampling settings (temperature, top_p) travel in the body whatever the SDK version names
            body["extra_body"] = params
        if self.structured and request.schema is not None:
            tool = f"report_{request.task}"
            body["tools"] = [
                {"name": tool, "description": "Report the result.", "input_schema": request.schema}
            ]
            body["tool_choice"] = {"type": "tool", "name": tool}
        return body

    async def complete(self, request: TeacherRequest, followup: tuple[tuple[str, str], ...] = ()) -> RawReply:
        start = time.perf_counter()
        try:
            raw = await self._client.messages.with_raw_response.create(**self.body(request, followup))
        except anthropic.APIStatusError as err:
            raise status_error(
                self.name, self.model, err.status_code, err.response.text, retry_after_seconds(err)
            ) from None
        except (anthropic.APITimeoutError, anthropic.APIConnectionError) as err:
            raise TransientError(f"{type(err).__name__} talking to anthropic") from None
        message = await parsed_body(self.name, raw, Message)
        parts = []
        for block in message.content:
            if block.type == "tool_use":
                parts.append(json.dumps(block.input))
            elif block.type == "text":
                parts.append(block.text)
        return RawReply(
            text="\n".join(parts),
            input_tokens=message.usage.input_tokens,
            output_tokens=message.usage.output_tokens,
            model=message.model or self.model,
            latency_s=time.perf_counter() - start,
            finish_reason=message.stop_reason or "",
        )

    async def aclose(self) -> None:
        await self._client.close()
