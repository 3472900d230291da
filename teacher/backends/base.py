"""The interface every teacher backend implements."""

from __future__ import annotations

import base64
import inspect
from abc import ABC, abstractmethod
from typing import Any

from teacher.records import (
    AuthError,
    ItemError,
    RawReply,
    TeacherError,
    TeacherRequest,
    TransientError,
    UnknownModelError,
)


def image_media_type(data: bytes) -> str:
    """The media type of PNG/JPEG/GIF/WebP bytes (providers need it for base64 images)."""
    if data.startswith(b"\x89PNG"):
        return "image/png"
    if data[:3] == b"\xff\xd8\xff":
        return "image/jpeg"
    if data[:4] == b"GIF8":
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    raise ValueError("image is not PNG, JPEG, GIF or WebP")


def retry_after_seconds(err: Exception) -> float | None:
    """The Retry-After header of an SDK status error (OpenAI and Anthropic errors both carry `.response`)."""
    response = getattr(err, "response", None)
    value = response.headers.get("retry-after") if response is not None else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def excerpt(text: str, limit: int = 200) -> str:
    """A body's first `limit` characters on one line, for failure reasons."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[:limit] + "..."


def status_error(
    provider: str, model: str, status: int, body: str, retry_after: float | None = None
) -> TeacherError:
    """The teacher error an HTTP error status means: 408/409/429/5xx transient (retried), 401/403 a
    rejected key and 404 an unknown model (both stop the job), any other 4xx a refusal of this one
    request (the item is recorded as failed with the status and the start of the body)."""
    if status in (408, 409, 429) or status >= 500:
        return TransientError(f"{status} from {provider}: {excerpt(body, 120)}", retry_after)
    if status in (401, 403):
        return AuthError(f"{provider} rejected the API key ({status}): {excerpt(body, 120)}")
    if status == 404:
        return UnknownModelError(f"{provider} does not know model {model!r} (404): {excerpt(body, 120)}")
    return ItemError(f"{provider} refused this request ({status})", status, excerpt(body))


async def parsed_body(provider: str, raw: Any, kind: type) -> Any:
    """The SDK object of a raw 2xx response (`with_raw_response`: OpenAI's parses synchronously,
    Anthropic's asynchronously), or `ItemError` naming the status and the start of the body when it is not
    the protocol's JSON (a proxy's HTML page, a cut-off body)."""
    if inspect.iscoroutinefunction(getattr(raw, "read", None)):
        await raw.read()
    status, text = raw.http_response.status_code, raw.http_response.text
    content_type = raw.headers.get("content-type", "")
    if "json" not in content_type:
        raise ItemError(
            f"{provider} answered {status} with a {content_type or 'untyped'} body, not JSON",
            status,
            excerpt(text),
        )
    try:
        parsed = raw.parse()
        if inspect.isawaitable(parsed):
            parsed = await parsed
    except ValueError:
        raise ItemError(
            f"{provider} answered {status} with a body that is not valid JSON", status, excerpt(text)
        ) from None
    if not isinstance(parsed, kind):
        raise ItemError(f"{provider} answered {status} with an unexpected body", status, excerpt(text))
    return parsed


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


class Backend(ABC):
    """Sends one `TeacherRequest` and returns the raw reply; raises `TransientError` for retryable failures.
    `followup` holds extra (role, text) turns after the first user turn (used for the one repair retry)."""

    name: str = "backend"

    def __init__(self, model: str):
        self.model = model

    @abstractmethod
    async def complete(
        self, request: TeacherRequest, followup: tuple[tuple[str, str], ...] = ()
    ) -> RawReply: ...

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release network clients."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model={self.model!r})"
