"""Reading JSON-lines files whose every error names the file and line (bad UTF-8 and bad JSON included)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any


class JSONLError(ValueError):
    """A line of a JSONL file that cannot be read; the message starts with `file:line:`."""


def read_objects(path: str | Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """(`file:line`, object) for every non-blank line; raises `JSONLError` naming the line otherwise."""
    path = Path(path)
    if path.is_dir():
        raise JSONLError(f"{path}: is a folder, expected a JSONL file")
    with path.open("rb") as f:
        for number, data in enumerate(f, start=1):
            where = f"{path}:{number}"
            try:
                line = data.decode("utf-8")
            except UnicodeDecodeError as err:
                raise JSONLError(
                    f"{where}: not UTF-8 text (byte {data[err.start]:#04x} at column {err.start + 1}); "
                    "save the file as UTF-8"
                ) from None
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as err:
                raise JSONLError(f"{where}: not valid JSON ({err.msg} at column {err.colno})") from None
            if not isinstance(obj, dict):
                raise JSONLError(f"{where}: expected a JSON object, got {type(obj).__name__}")
            yield where, obj
