"""OpenAI chat completions through the official SDK; also any OpenAI-compatible server (vLLM, llama.cpp,
Ollama) by `base_url`. Structured output via `response_format` JSON schema."""

from __future__ import annotations

import os
import time

import openai
from openai.types.chat import ChatCompletion

from teacher.backends.base import (
    Backend,
    b64,
    excerpt,
    image_media_type,
    parsed_body,
    retry_after_seconds,
    status_error,
)
from teacher.records import ItemError, MissingAPIKeyError, RawReply, TeacherRequest, TransientError


class OpenAIBackend(Backend):
    name = "openai"

    def __init__(
        self,
        model: str,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: float = 120.0,
        structured: bool = True,
        key_variable: str = "OPENAI_API_KEY",
        spec: str = "",
    ):
        super().__init__(model)
        key = api_key or os.environ.get(key_variable)
        if not key:
            raise MissingAPIKeyError(key_variable, spec or f"openai:{model}")
        self.structured = structured
        self._client = openai.AsyncOpenAI(api_key=key, base_url=base_url, timeout=timeout, max_retries=0)

    def messages(self, request: TeacherRequest, followup: tuple[tuple[str, str], ...] = ()) -> list[dict]:
        content: list[dict] = [{"type": "text", "text": request.user_text}]
        for image in request.images:
            url = f"data:{image_media_type(image)};base64,{b64(image)}"
            content.append({"type": "image_url", "image_url": {"url": url}})
        messages = [{"role": "system", "content": request.system}, {"role": "user", "content": content}]
        messages += [{"role": role, "content": text} for role, text in followup]
        return messages

    def body(self, request: TeacherRequest, followup: tuple[tuple[str, str], ...] = ()) -> dict:
        """The chat-completions request body (also one line of a Batch API input file)."""
        body = {"model": self.model, "messages": self.messages(request, followup), **request.params}
        if self.structured and request.schema is not None:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": f"{request.task}_reply", "schema": request.schema, "strict": True},
            }
        return body

    async def complete(self, request: TeacherRequest, followup: tuple[tuple[str, str], ...] = ()) -> RawReply:
        start = time.perf_counter()
        try:
            raw = await self._client.chat.completions.with_raw_response.create(**self.body(request, followup))
        except openai.APIStatusError as err:
            raise status_error(
                self.name, self.model, err.status_code, err.response.text, retry_after_seconds(err)
            ) from None
        except (openai.APITimeoutError, openai.APIConnectionError) as err:
            raise TransientError(f"{type(err).__name__} talking to {self.name}") from None
        response = await parsed_body(self.name, raw, ChatCompletion)
        if not response.choices:
            raise ItemError(f"{self.name} answered 200 with no choices", 200, excerpt(raw.http_response.text))
        choice = response.choices[0]
        usage = response.usage
        return RawReply(
            text=choice.message.content or "",
            input_tokens=usage.prompt_tokens if usage else 0,
            output_tokens=usage.completion_tokens if usage else 0,
            model=response.model or self.model,
            latency_s=time.perf_counter() - start,
            finish_reason=choice.finish_reason or "",
        )

    async def aclose(self) -> None:
        await self._client.close()


class OpenAICompatibleBackend(OpenAIBackend):
    """A self-hosted OpenAI-compatible server. The key is optional (`OPENAI_COMPATIBLE_API_KEY`)."""

    name = "openai-compatible"

    def __init__(self, model: str, base_url: str, api_key: str | None = None, **kwargs):
        key = api_key or os.environ.get("OPENAI_COMPATIBLE_API_KEY") or "not-needed"
        super().__init__(model, api_key=key, base_url=base_url, **kwargs)
