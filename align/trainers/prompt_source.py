"""What the policy is prompted with for a problem: the trainers take any `PromptSource`, so the same PPO and
SFT code serves ARES's MM-CoT problems, raw text prefixes (IMDB continuations for GPT-2) and instruction
prompts (TL;DR summaries)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from align.data.prompts import build_prompt


@dataclass(frozen=True)
class Prompt:
    """The text of one prompt and its image (a path), if any."""

    text: str
    image: Path | str | None = None


class PromptSource(Protocol):
    """`problem -> Prompt` (a plain string or a `(text, image)` pair is accepted too)."""

    def __call__(self, problem: Any) -> Prompt | str | tuple[str, Path | str | None]: ...


@dataclass(frozen=True)
class MMCoTPrompt:
    """ARES's prompt: the problem in a Multimodal-CoT format (`QCM-E` by default) with its image."""

    fmt: str = "QCM-E"

    def __call__(self, problem: Any) -> Prompt:
        return Prompt(build_prompt(problem, self.fmt), getattr(problem, "image", None))


@dataclass(frozen=True)
class TextPrompt:
    """The problem is the prompt: a string, or an object whose `field` holds the text (no image)."""

    field: str = "prompt"

    def __call__(self, problem: Any) -> Prompt:
        return Prompt(problem if isinstance(problem, str) else str(getattr(problem, self.field)))


def as_prompt(value: Prompt | str | tuple[str, Any]) -> Prompt:
    """A prompt source's answer as a `Prompt`."""
    if isinstance(value, Prompt):
        return value
    if isinstance(value, str):
        return Prompt(value)
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], str):
        return Prompt(value[0], value[1])
    raise TypeError(f"a prompt source must return a Prompt, a string or (text, image), got {value!r}")


def render_prompts(source: PromptSource, problems: list[Any]) -> list[Prompt]:
    return [as_prompt(source(p)) for p in problems]
