"""Reading JSON-lines files whose every error names the file and line (bad UTF-8 and bad JSON included)."""

from __future__ import annotations

import difflib
import json
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import Any


class JSONLError(ValueError):
    """A line of a JSONL file that cannot be read; the message starts with `file:line:`."""


def _parse(where: str, data: bytes) -> dict[str, Any] | None:
    """The object on one line, None for a blank line; `JSONLError` naming the line otherwise."""
    try:
        line = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise JSONLError(
            f"{where}: not UTF-8 text (byte {data[err.start]:#04x} at column {err.start + 1}); "
            "save the file as UTF-8"
        ) from None
    if not line.strip():
        return None
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as err:
        raise JSONLError(f"{where}: not valid JSON ({err.msg} at column {err.colno})") from None
    if not isinstance(obj, dict):
        raise JSONLError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    return obj


def read_objects(path: str | Path, errors: list[str] | None = None) -> Iterator[tuple[str, dict[str, Any]]]:
    """(`file:line`, object) for every non-blank line. A line that cannot be read raises `JSONLError` naming
    it, or, when an `errors` list is given, is appended to it and skipped (so every bad line is reported)."""
    path = Path(path)
    if path.is_dir():
        raise JSONLError(f"{path}: is a folder, expected a JSONL file")
    with path.open("rb") as f:
        for number, data in enumerate(f, start=1):
            where = f"{path}:{number}"
            try:
                obj = _parse(where, data)
            except JSONLError as err:
                if errors is None:
                    raise
                errors.append(str(err))
                continue
            if obj is not None:
                yield where, obj


def unknown_fields(obj: dict[str, Any], known: Collection[str]) -> list[str]:
    """One phrase per field of `obj` that is not in `known`, with a "did you mean" for a near miss."""
    out = []
    for name in obj:
        if name in known:
            continue
        close = difflib.get_close_matches(str(name), list(known), n=1, cutoff=0.7)
        out.append(f"unknown field {name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    return out


def listed(problems: list[str], limit: int = 10) -> str:
    """Problems one per line, indented, at most `limit` of them and a count of the rest."""
    more = f"\n  ... and {len(problems) - limit} more" if len(problems) > limit else ""
    return "\n  ".join(problems[:limit]) + more
