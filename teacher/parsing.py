"""Finding and validating the JSON object in a teacher's reply. Every rejection carries a reason."""

from __future__ import annotations

import json
import math
import re
from typing import Any

_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL)


class ReplyError(ValueError):
    """A reply that cannot be accepted; the message is the recorded failure reason."""


def extract_json_object(text: str) -> dict[str, Any]:
    """The first JSON object in `text`: the whole text, a fenced block, or an object inside prose."""
    stripped = text.strip()
    candidates = [stripped] + [m.group(1).strip() for m in _FENCE.finditer(text)]
    for candidate in candidates:
        try:
            value = json.loads(candidate)
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            return value
    decoder = json.JSONDecoder()
    saw_open = False
    for match in re.finditer(r"\{", text):
        saw_open = True
        try:
            value, _ = decoder.raw_decode(text, match.start())
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            return value
    if saw_open:
        raise ReplyError("truncated or malformed JSON: an object starts but does not parse")
    raise ReplyError("unparsable reply: no JSON object found")


def validate_scores(value: Any, expected: int) -> list[float]:
    """Scores in [0, 1], `expected` of them, rounded to the 0.1 grid (rounding is the only change made)."""
    if not isinstance(value, list):
        raise ReplyError(f"'scores' must be a list, got {type(value).__name__}")
    if len(value) != expected:
        raise ReplyError(f"expected {expected} scores (one per sentence), got {len(value)}")
    out = []
    for k, score in enumerate(value):
        if isinstance(score, bool) or not isinstance(score, (int, float)) or not math.isfinite(score):
            raise ReplyError(f"score {k} is not a number: {score!r}")
        if not 0.0 <= score <= 1.0:
            raise ReplyError(f"score {k} = {score} is outside [0.0, 1.0]")
        out.append(round(float(score) * 10) / 10)
    return out


def validate_verdict(value: Any) -> str:
    """'A', 'B' or 'tie' (case and a trailing 'Option'/'Rationale' prefix tolerated)."""
    if not isinstance(value, str):
        raise ReplyError(f"'verdict' must be a string, got {type(value).__name__}")
    v = re.sub(r"^(option|rationale)\s+", "", value.strip(), flags=re.IGNORECASE).strip().strip(".()")
    if v.upper() in ("A", "B"):
        return v.upper()
    if v.lower() in ("tie", "equal", "same", "draw"):
        return "tie"
    raise ReplyError(f"verdict must be 'A', 'B' or 'tie', got {value!r}")


def validate_text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ReplyError("'corrected_rationale' must be a non-empty string")
    return value.strip()
