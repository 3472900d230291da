"""Read one split of a table dataset from the Hugging Face hub or a local copy in the hub's layout.

A source is a hub id (`stanfordnlp/imdb`), a local file (`.parquet`, `.jsonl`, `.json`, `.csv`) or a local
folder holding the hub's files (`plain_text/train-00000-of-00001.parquet`, `data/validation-*.parquet`) or
`{split}.parquet` / `{split}.jsonl`. A missing or malformed column of any row is an error naming the file, the
record (line of a JSONL/CSV file, index of a parquet/JSON/hub row) and the column.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from align.data.errors import DatasetFormatError

TABLE_SUFFIXES = (".parquet", ".jsonl", ".json", ".csv")


def split_files(folder: Path, split: str) -> list[Path]:
    """The files of `split` in a local folder: `{split}.<ext>` or the hub's `{split}-NNNNN-of-NNNNN.<ext>`
    shards, searched recursively, in name order."""
    found: list[Path] = []
    for suffix in TABLE_SUFFIXES:
        found += folder.rglob(f"{split}{suffix}")
        found += folder.rglob(f"{split}-*{suffix}")
    return sorted(set(found))


@dataclass
class Table:
    """The rows of one split and where each came from (file and line or row), so that an error about any
    row names its file and record."""

    rows: list[dict[str, Any]]
    where: str
    origins: list[tuple[str, str]] = field(default_factory=list)

    def error(self, index: int, problem: str, column: str | None = None) -> DatasetFormatError:
        path, record = (
            self.origins[index] if index < len(self.origins) else (self.where, f"row index {index}")
        )
        return DatasetFormatError(path, problem, record=record, field=column)

    def text(self, index: int, column: str) -> str:
        """A string column of row `index`, or an error naming the file, record and column."""
        row = self.rows[index]
        if column not in row:
            raise self.error(index, f"missing (the row has {sorted(map(str, row))})", column)
        value = row[column]
        if not isinstance(value, str):
            raise self.error(index, f"expected a string, got {type(value).__name__} {value!r:.60}", column)
        return value

    def value(self, index: int, column: str) -> Any:
        """Column `column` of row `index`, or an error naming the file, record and column when missing."""
        row = self.rows[index]
        if column not in row:
            raise self.error(index, f"missing (the row has {sorted(map(str, row))})", column)
        return row[column]


def _rows(path: Path, items: list[Any], labels: list[str]) -> Table:
    for item, label in zip(items, labels, strict=True):
        if not isinstance(item, dict):
            raise DatasetFormatError(path, f"expected an object of columns, got {type(item).__name__}", label)
    return Table(items, str(path), [(str(path), label) for label in labels])


def _read_file(path: Path) -> Table:
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        try:
            rows = pq.read_table(path).to_pylist()
        except Exception as err:  # pyarrow raises its own error types for a damaged file
            raise DatasetFormatError(path, f"not a readable parquet file ({err})") from None
        return _rows(path, rows, [f"row index {k}" for k in range(len(rows))])
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise DatasetFormatError(path, f"not UTF-8 text ({err})") from None
    if path.suffix == ".jsonl":
        items, labels = [], []
        for number, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    items.append(json.loads(line))
                except json.JSONDecodeError as err:
                    raise DatasetFormatError(
                        path, f"not valid JSON: {err}", record=f"line {number}"
                    ) from None
                labels.append(f"line {number}")
        return _rows(path, items, labels)
    if path.suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise DatasetFormatError(path, f"not valid JSON: {err}") from None
        items = data if isinstance(data, list) else data.get("data", []) if isinstance(data, dict) else None
        if not isinstance(items, list):
            raise DatasetFormatError(path, 'expected a list of records (or {"data": [...]})')
        return _rows(path, items, [f"record index {k}" for k in range(len(items))])
    if path.suffix == ".csv":
        reader = csv.DictReader(io.StringIO(text, newline=""))
        items, labels = [], []
        try:
            for row in reader:
                if None in row:
                    raise DatasetFormatError(
                        path,
                        f"{len(reader.fieldnames or [])} columns in the header, more here",
                        f"line {reader.line_num}",
                    )
                items.append(row)
                labels.append(f"line {reader.line_num}")
        except csv.Error as err:
            raise DatasetFormatError(path, f"not valid CSV: {err}", f"line {reader.line_num}") from None
        return _rows(path, items, labels)
    raise DatasetFormatError(path, f"unknown table format {path.suffix!r}; use one of {TABLE_SUFFIXES}")


def _read_hub(source: str, split: str) -> Table:
    from datasets import load_dataset

    try:
        rows = load_dataset(source, split=split).to_list()
    except Exception as err:  # datasets raises many types (missing split, offline, unknown repo)
        raise DatasetFormatError(
            source,
            f"split {split!r}: not a local file or folder, and loading it from the hub failed "
            f"({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''})",
        ) from None
    where = f"{source} [{split}]"
    return Table(rows, where, [(where, f"row index {k}") for k in range(len(rows))])


def load_table(source: str | Path, split: str, columns: Sequence[str]) -> Table:
    """The rows of `split` (the first row must have `columns`) with the file and record of each."""
    path = Path(source)
    if path.is_file():
        table = _read_file(path)
    elif path.is_dir():
        files = split_files(path, split)
        if not files:
            present = sorted({p.name for s in TABLE_SUFFIXES for p in path.rglob(f"*{s}")})
            raise DatasetFormatError(
                path,
                f"no files for split {split!r} (looked for {split}.<ext> and {split}-*.<ext>); found {present}",
            )
        parts = [_read_file(f) for f in files]
        table = Table(
            [r for t in parts for r in t.rows],
            ", ".join(str(f) for f in files),
            [o for t in parts for o in t.origins],
        )
    else:
        table = _read_hub(str(source), split)
    if not table.rows:
        raise DatasetFormatError(table.where, f"split {split!r} is empty")
    missing = [c for c in columns if c not in table.rows[0]]
    if missing:
        raise table.error(
            0, f"missing column {missing[0]!r}; the rows have {sorted(table.rows[0])}", missing[0]
        )
    return table
