"""Typed access to fields of raw JSON records, with errors that name the file, record and field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from align.data.errors import DatasetFormatError


def read_json(path: Path) -> Any:
    """Parse a JSON file, turning a missing file or bad JSON into a `DatasetFormatError`."""
    if not path.is_file():
        raise DatasetFormatError(path, "file not found")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise DatasetFormatError(
            path, f"not valid JSON ({err.msg} at line {err.lineno} column {err.colno})"
        ) from err


class RecordReader:
    """Reads fields of one record, checking their types."""

    def __init__(self, path: Path, record_id: str, record: Any):
        if not isinstance(record, dict):
            raise DatasetFormatError(path, f"expected a JSON object, got {type(record).__name__}", record_id)
        self.path, self.record_id, self.record = path, record_id, record

    def error(self, field: str, problem: str) -> DatasetFormatError:
        return DatasetFormatError(self.path, problem, self.record_id, field)

    def get(
        self, field: str, kind: type | tuple[type, ...], default: Any = ..., *, nullable: bool = False
    ) -> Any:
        if field not in self.record:
            if default is ...:
                raise self.error(field, "missing")
            return default
        value = self.record[field]
        if value is None and nullable:
            return None
        if isinstance(value, bool) and kind in (int, float):
            raise self.error(field, f"expected {kind.__name__}, got bool")
        if not isinstance(value, kind):
            names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
            raise self.error(field, f"expected {names}, got {type(value).__name__} {value!r:.60}")
        return value

    def string_list(self, field: str, default: Any = ...) -> list[str]:
        values = self.get(field, list, default)
        if not all(isinstance(v, str) for v in values):
            raise self.error(field, "expected a list of strings")
        return values

    def choice_index(self, field: str, choices: list[str]) -> int:
        index = self.get(field, int)
        if not 0 <= index < len(choices):
            raise self.error(field, f"index {index} is outside the {len(choices)} choices")
        return index
