"""Sharing a feedback cache: export its rows as JSONL, import an export into another cache.

Imported rows are checked with the validators that judge live replies: a row marked ok must carry a result
those validators accept (scores in [0, 1] on the 0.1 grid, the expected count, a verdict A/B/tie, a
non-empty correction) and, when its raw reply is there, exactly the result the raw reply parses to. One bad
line and nothing is imported; the error names the file and line of each.
"""

from __future__ import annotations

import json
import math
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from teacher.jsonl import listed, read_objects, unknown_fields
from teacher.parsing import ReplyError, validate_scores, validate_text, validate_verdict
from teacher.prompts import parse_reply
from teacher.records import TASKS, RawReply, TeacherRequest

if TYPE_CHECKING:
    from teacher.cache import FeedbackCache

_KEY = re.compile(r"[0-9a-f]{64}")
MAX_LISTED = 5


class RowImportError(ValueError):
    """An export that cannot be imported; names the file and the lines at fault."""


def export_rows(cache: FeedbackCache, path: str | Path) -> int:
    """Write every row of `cache` as one JSON line to `path` (never the cache itself); returns the count."""
    from teacher.cache import CacheError, is_cache_file

    if is_cache_file(path, cache.path):
        raise CacheError(f"export --to {path} is the cache itself: writing there would destroy it")
    n = 0
    with Path(path).open("w", encoding="utf-8") as f:
        for row in cache.rows():
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
            n += 1
    return n


def _count(row: dict[str, Any], name: str, kind: type = int) -> None:
    value = row.get(name)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float) if kind is float else int):
        raise ReplyError(f"field {name!r} must be a number, got {value!r}")
    if not math.isfinite(value) or value < 0:
        raise ReplyError(f"field {name!r} must be finite and not negative, got {value!r}")


def validate_row(row: dict[str, Any]) -> dict[str, Any]:
    """The row as it will be stored, or `ReplyError` naming the field at fault."""
    key = row.get("key")
    if not isinstance(key, str) or not _KEY.fullmatch(key):
        raise ReplyError(f"field 'key' must be a cache key (64 hex digits), got {key!r}")
    task = row.get("task")
    if task not in TASKS:
        raise ReplyError(f"field 'task' must be one of {TASKS}, got {task!r}")
    for name in ("backend", "model", "prompt_version"):
        if not isinstance(row.get(name), str) or not row[name]:
            raise ReplyError(f"field {name!r} must be a non-empty string, got {row.get(name)!r}")
    if row.get("ok") not in (0, 1, True, False):
        raise ReplyError(f"field 'ok' must be true/false (or 1/0), got {row.get('ok')!r}")
    ok = bool(row["ok"])
    for name in ("input_tokens", "output_tokens"):
        _count(row, name)
    for name in ("cost", "latency_s", "created"):
        _count(row, name, float)
    expect = row.get("expect")
    if expect is not None and (isinstance(expect, bool) or not isinstance(expect, int) or expect < 1):
        raise ReplyError(f"field 'expect' must be a positive count or null, got {expect!r}")
    try:
        payload = json.loads(row["payload"]) if isinstance(row.get("payload"), str) else row.get("payload")
    except json.JSONDecodeError:
        raise ReplyError("field 'payload' is not JSON") from None
    if not isinstance(payload, dict) or set(payload) - {"scores", "text", "verdict"}:
        raise ReplyError(f"field 'payload' must be an object with scores/text/verdict, got {payload!r}")
    if not ok:
        if not isinstance(row.get("failure"), str) or not row["failure"]:
            raise ReplyError("a failed row must give its reason in 'failure'")
        if any(v is not None for v in payload.values()):
            raise ReplyError("a failed row carries a result in 'payload'")
    else:
        payload = _validated_payload(task, payload, expect)
        raw = row.get("raw")
        if isinstance(raw, str) and raw:
            stub = TeacherRequest(task, row["prompt_version"], "", "", expect=expect or _n_scores(payload))
            reparsed = parse_reply(stub, RawReply(text=raw))
            if not reparsed.ok or reparsed.payload() != payload:
                raise ReplyError("'payload' is not what its raw reply parses to")
    return {
        **row,
        "ok": int(ok),
        "payload": json.dumps(payload),
        "created": row.get("created") or time.time(),
    }


def _n_scores(payload: dict[str, Any]) -> int:
    return len(payload.get("scores") or [])


def _validated_payload(task: str, payload: dict[str, Any], expect: int | None) -> dict[str, Any]:
    out: dict[str, Any] = {"scores": None, "text": None, "verdict": None}
    if task == "score":
        scores = payload.get("scores")
        if not isinstance(scores, list) or not scores:
            raise ReplyError("an ok score row needs a non-empty 'scores' list")
        out["scores"] = validate_scores(scores, expect or len(scores))
    elif task == "correct":
        out["text"] = validate_text(payload.get("text"))
    else:
        out["verdict"] = validate_verdict(payload.get("verdict"))
    if any(payload.get(k) is not None and payload.get(k) != v for k, v in out.items()):
        raise ReplyError(f"'payload' {payload!r} is not a validated result (expected {out!r})")
    return out


def import_rows(cache: FeedbackCache, path: str | Path, overwrite: bool = False) -> int:
    """Validate every line of an export, then insert all rows in one transaction (or none)."""
    from teacher.cache import CacheError, is_cache_file

    if is_cache_file(path, cache.path):
        raise CacheError(f"import --from {path} is the cache itself")
    from teacher.cache import ROW_FIELDS

    rows: list[dict[str, Any]] = []
    problems: list[str] = []
    total = 0
    for where, obj in read_objects(path, errors=problems):
        total += 1
        faults = unknown_fields(obj, ROW_FIELDS)
        try:
            rows.append(validate_row(obj))
        except ReplyError as err:
            faults.append(str(err))
        if faults:
            problems.append(f"{where}: {'; '.join(faults)}")
    if problems:
        raise RowImportError(
            f"{path}: {len(problems)} line(s) are not valid cache rows; nothing was imported:\n  "
            f"{listed(problems, MAX_LISTED)}"
        )
    if total == 0:
        raise RowImportError(f"{path}: no rows (the file is empty); expected an `ares-teacher export`")
    return cache.insert_rows(rows, overwrite)
