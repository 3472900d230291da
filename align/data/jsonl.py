"""Problems as JSON lines, the interchange format of the teacher CLI's input files."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from align.data.errors import DatasetFormatError
from align.data.problem import Problem


def problem_to_dict(problem: Problem) -> dict[str, Any]:
    record = asdict(problem)
    record["choices"] = list(problem.choices)
    record["rationales"] = list(problem.rationales)
    record["image"] = str(problem.image) if problem.image else None
    return record


def problem_from_dict(record: dict[str, Any], base: Path | None = None) -> Problem:
    image = record.get("image")
    if image:
        image = Path(image)
        if base is not None and not image.is_absolute():
            image = base / image
    return Problem(
        id=str(record["id"]),
        question=record["question"],
        choices=tuple(record["choices"]),
        answer=int(record["answer"]),
        context=record.get("context", ""),
        image=image or None,
        lecture=record.get("lecture", ""),
        solution=record.get("solution", ""),
        rationales=tuple(record.get("rationales", ())),
        split=record.get("split", ""),
        source=record.get("source", ""),
        meta=record.get("meta", {}),
    )


def write_problems(
    path: Path, problems: Iterable[Problem], extra: Iterable[dict[str, Any]] | None = None
) -> None:
    """Write one problem per line; `extra` dicts (same length) are merged into each line."""
    extras = list(extra) if extra is not None else None
    with Path(path).open("w", encoding="utf-8") as f:
        for k, problem in enumerate(problems):
            record = problem_to_dict(problem)
            if extras is not None:
                record.update(extras[k])
            f.write(json.dumps(record, ensure_ascii=False) + "\n")


def read_problems(path: Path) -> list[Problem]:
    """Read problems written by `write_problems`; image paths are relative to the file's folder."""
    path = Path(path)
    out = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        record = f"line {lineno}"
        try:
            data = json.loads(line)
        except json.JSONDecodeError as err:
            raise DatasetFormatError(path, f"not valid JSON: {err}", record) from None
        if not isinstance(data, dict):
            raise DatasetFormatError(path, f"expected a JSON object, got {type(data).__name__}", record)
        try:
            out.append(problem_from_dict(data, path.parent))
        except KeyError as err:
            raise DatasetFormatError(path, "missing", record, str(err.args[0])) from None
        except (TypeError, ValueError) as err:
            raise DatasetFormatError(path, str(err), record) from None
    return out
