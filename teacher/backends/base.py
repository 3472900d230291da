"""The interface every teacher backend implements."""

from __future__ import annotations

import base64
from abc import ABC, abstractmethod

from teacher.records import RawReply, TeacherRequest


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
