"""Anthropic Messages through the official SDK. Structured output by forcing a tool whose input schema is
the task's JSON schema; the tool input becomes the reply text."""

from __future__ import annotations

import json
import os
import time

import anthropic

from teacher.backends.base import Backend, b64, image_media_type, retry_after_seconds
from teacher.records import (
    MissingAPIKeyError,
    RawReply,
    TeacherError,
    TeacherRequest,
    TransientError,
    UnknownModelError,
)


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
            message = await self._client.messages.create(**self.body(request, followup))
        except anthropic.RateLimitError as err:
            raise TransientError("429 rate limited by anthropic", retry_after_seconds(err)) from None
        except anthropic.NotFoundError as err:
            raise UnknownModelError(f"anthropic does not know model {self.model!r}: {err.message}") from None
        except anthropic.AuthenticationError as err:
            raise TeacherError(f"anthropic rejected the API key: {err.message}") from None
        except anthropic.InternalServerError as err:
            raise TransientError(
                f"{err.status_code} server error from anthropic", retry_after_seconds(err)
            ) from None
        except anthropic.APIStatusError as err:
            if err.status_code in (429, 529) or err.status_code >= 500:
                raise TransientError(f"{err.status_code} from anthropic", retry_after_seconds(err)) from None
            raise TeacherError(f"anthropic refused the request ({err.status_code}): {err.message}") from None
        except (anthropic.APITimeoutError, anthropic.APIConnectionError) as err:
            raise TransientError(f"{type(err).__name__} talking to anthropic") from None
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
