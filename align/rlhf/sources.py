"""Read one split of a table dataset from the Hugging Face hub or a local copy in the hub's layout.

A source is a hub id (`stanfordnlp/imdb`), a local file (`.parquet`, `.jsonl`, `.json`, `.csv`) or a local
folder holding the hub's files (`plain_text/train-00000-of-00001.parquet`, `data/validation-*.parquet`) or
`{split}.parquet` / `{split}.jsonl`. Missing columns are errors naming the source, split and column.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
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


def _read_file(path: Path) -> list[dict[str, Any]]:
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist()
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix == ".jsonl":
            return [json.loads(line) for line in text.splitlines() if line.strip()]
        if path.suffix == ".json":
            data = json.loads(text)
            return data if isinstance(data, list) else data.get("data", [])
    except json.JSONDecodeError as err:
        raise DatasetFormatError(path, f"not valid JSON: {err}") from None
    if path.suffix == ".csv":
        return list(csv.DictReader(text.splitlines()))
    raise DatasetFormatError(path, f"unknown table format {path.suffix!r}; use one of {TABLE_SUFFIXES}")


def _read_hub(source: str, split: str) -> list[dict[str, Any]]:
    from datasets import load_dataset

    try:
        return load_dataset(source, split=split).to_list()
    except Exception as err:  # datasets raises many types (missing split, offline, unknown repo)
        raise FileNotFoundError(
            f"dataset {source!r} split {split!r}: not a local file or folder, and loading it from the hub "
            f"failed ({type(err).__name__}: {err})"
        ) from err


def load_rows(source: str | Path, split: str, columns: Sequence[str]) -> tuple[list[dict[str, Any]], str]:
    """The rows of `split` (with at least `columns`) and a description of where they came from."""
    path = Path(source)
    if path.is_file():
        rows, where = _read_file(path), str(path)
    elif path.is_dir():
        files = split_files(path, split)
        if not files:
            present = sorted({p.name for s in TABLE_SUFFIXES for p in path.rglob(f"*{s}")})
            raise DatasetFormatError(
                path,
                f"no files for split {split!r} (looked for {split}.<ext> and {split}-*.<ext>); found {present}",
            )
        rows, where = [r for f in files for r in _read_file(f)], ", ".join(str(f) for f in files)
    else:
        rows, where = _read_hub(str(source), split), f"{source} [{split}]"
    if not rows:
        raise DatasetFormatError(where, f"split {split!r} is empty")
    missing = [c for c in columns if c not in rows[0]]
    if missing:
        raise DatasetFormatError(
            where, f"missing column {missing[0]!r}; the rows have {sorted(rows[0])}", field=missing[0]
        )
    return rows, where


def text_field(row: dict[str, Any], column: str, where: str, index: int) -> str:
    """A string column of a row, or an error naming the record and column."""
    value = row.get(column)
    if not isinstance(value, str):
        raise DatasetFormatError(
            where, f"expected a string, got {type(value).__name__}", record=str(index), field=column
        )
    return value
