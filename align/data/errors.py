"""The error a loader raises for a malformed dataset file."""

from __future__ import annotations

from pathlib import Path

from align.user_errors import UserError


class DatasetFormatError(UserError, ValueError):
    """A dataset file does not have the released format; the message names the file, record and field (a
    user error: the recipes report it in one or two lines with exit code 2)."""

    def __init__(self, path: Path | str, problem: str, record: str | None = None, field: str | None = None):
        where = f"{path}"
        if record is not None:
            where += f", record {record!r}"
        if field is not None:
            where += f", field {field!r}"
        super().__init__(f"{where}: {problem}")
        self.path, self.record, self.field = str(path), record, field
