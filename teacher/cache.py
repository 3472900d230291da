"""A persistent feedback cache: SQLite in WAL mode, safe for several processes writing at once.

Key = sha256(backend name, model, request fingerprint), so the same request to the same model is paid for
once. Rows hold the raw reply, the parsed payload, the failure reason, token usage, cost, latency and time.
No API key ever reaches a request or a row.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from teacher.records import Feedback, TeacherRequest

_SCHEMA = """
CREATE TABLE IF NOT EXISTS feedback (
    key TEXT PRIMARY KEY,
    task TEXT NOT NULL,
    backend TEXT NOT NULL,
    model TEXT NOT NULL,
    prompt_version TEXT NOT NULL,
    item_id TEXT,
    ok INTEGER NOT NULL,
    failure TEXT,
    payload TEXT,
    raw TEXT,
    input_tokens INTEGER,
    output_tokens INTEGER,
    cost REAL,
    latency_s REAL,
    created REAL NOT NULL,
    reported_model TEXT
);
CREATE INDEX IF NOT EXISTS feedback_task ON feedback(task, ok);
CREATE TABLE IF NOT EXISTS batches (
    batch_id TEXT PRIMARY KEY,
    backend TEXT NOT NULL,
    model TEXT NOT NULL,
    task TEXT NOT NULL,
    status TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS batch_items (
    batch_id TEXT NOT NULL,
    custom_id TEXT NOT NULL,
    key TEXT NOT NULL,
    item_id TEXT,
    prompt_version TEXT NOT NULL,
    expect INTEGER,
    PRIMARY KEY (batch_id, custom_id)
);
"""
_COLUMNS = (
    "key",
    "task",
    "backend",
    "model",
    "prompt_version",
    "item_id",
    "ok",
    "failure",
    "payload",
    "raw",
    "input_tokens",
    "output_tokens",
    "cost",
    "latency_s",
    "created",
    "reported_model",
)


@dataclass(frozen=True)
class BatchEntry:
    """One request of a submitted batch: enough to validate its reply and file it under its cache key."""

    custom_id: str
    key: str
    item_id: str
    prompt_version: str
    expect: int | None


def cache_key(backend: str, model: str, request: TeacherRequest) -> str:
    return hashlib.sha256(f"{backend}\x00{model}\x00{request.fingerprint()}".encode()).hexdigest()


class FeedbackCache:
    """SQLite feedback store. One connection per instance; open one per process (or per thread)."""

    def __init__(self, path: str | Path, timeout_s: float = 60.0):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(
            self.path, timeout=timeout_s, isolation_level=None, check_same_thread=False
        )
        self._db.execute(f"PRAGMA busy_timeout = {int(timeout_s * 1000)}")
        self._db.execute("PRAGMA journal_mode = WAL")
        self._db.execute("PRAGMA synchronous = NORMAL")
        self._db.executescript(_SCHEMA)
        columns = {r[1] for r in self._db.execute("PRAGMA table_info(feedback)")}
        if "reported_model" not in columns:  # caches written before the model as reported was kept
            self._db.execute("ALTER TABLE feedback ADD COLUMN reported_model TEXT")

    def get(self, key: str) -> Feedback | None:
        row = self._db.execute("SELECT * FROM feedback WHERE key = ?", (key,)).fetchone()
        return None if row is None else self._feedback(dict(zip(_COLUMNS, row, strict=True)))

    def put(self, key: str, request: TeacherRequest, backend: str, model: str, fb: Feedback) -> None:
        """Store (or replace) one result in a single atomic statement."""
        row = (
            key,
            fb.task,
            backend,
            model,
            fb.prompt_version,
            request.item_id,
            int(fb.ok),
            fb.failure,
            json.dumps(fb.payload()),
            fb.raw,
            fb.input_tokens,
            fb.output_tokens,
            fb.cost,
            fb.latency_s,
            time.time(),
            fb.model,
        )
        self._db.execute(f"INSERT OR REPLACE INTO feedback VALUES ({','.join('?' * len(_COLUMNS))})", row)

    @staticmethod
    def _feedback(row: dict[str, Any]) -> Feedback:
        payload = json.loads(row["payload"] or "{}")
        return Feedback(
            task=row["task"],
            ok=bool(row["ok"]),
            failure=row["failure"],
            raw=row["raw"] or "",
            model=row.get("reported_model") or row["model"],
            prompt_version=row["prompt_version"],
            input_tokens=row["input_tokens"] or 0,
            output_tokens=row["output_tokens"] or 0,
            cost=row["cost"],
            latency_s=row["latency_s"] or 0.0,
            cached=True,
            **payload,
        )

    def __len__(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM feedback").fetchone()[0]

    def stats(self) -> dict[str, Any]:
        """Counts, failures, tokens and cost per task."""
        out: dict[str, Any] = {}
        for task, ok, n, tin, tout, cost in self._db.execute(
            "SELECT task, ok, COUNT(*), SUM(input_tokens), SUM(output_tokens), SUM(cost) FROM feedback GROUP BY task, ok"
        ):
            entry = out.setdefault(
                task, {"ok": 0, "failed": 0, "input_tokens": 0, "output_tokens": 0, "cost": 0.0}
            )
            entry["ok" if ok else "failed"] += n
            entry["input_tokens"] += tin or 0
            entry["output_tokens"] += tout or 0
            entry["cost"] += cost or 0.0
        reasons = self._db.execute(
            "SELECT failure, COUNT(*) FROM feedback WHERE ok = 0 GROUP BY failure ORDER BY 2 DESC LIMIT 10"
        ).fetchall()
        return {"tasks": out, "total": len(self), "top_failures": reasons}

    def rows(self) -> Iterator[dict[str, Any]]:
        for row in self._db.execute(f"SELECT {','.join(_COLUMNS)} FROM feedback ORDER BY created"):
            yield dict(zip(_COLUMNS, row, strict=True))

    def export_jsonl(self, path: str | Path) -> int:
        """Write every row as one JSON line; returns the count."""
        n = 0
        with Path(path).open("w", encoding="utf-8") as f:
            for row in self.rows():
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
                n += 1
        return n

    def import_jsonl(self, path: str | Path, overwrite: bool = False) -> int:
        """Merge rows from an export; existing keys are kept unless `overwrite`. Returns rows written."""
        verb = "INSERT OR REPLACE" if overwrite else "INSERT OR IGNORE"
        before = self._db.total_changes
        with Path(path).open(encoding="utf-8") as f:
            self._db.execute("BEGIN IMMEDIATE")
            for line in f:
                if line.strip():
                    row = json.loads(line)
                    self._db.execute(
                        f"{verb} INTO feedback VALUES ({','.join('?' * len(_COLUMNS))})",
                        tuple(row.get(c) for c in _COLUMNS),
                    )
            self._db.execute("COMMIT")
        return self._db.total_changes - before

    # -- provider batches (OpenAI Batch API, Anthropic Message Batches) ----------------------------------
    def add_batch(
        self, batch_id: str, backend: str, model: str, task: str, entries: list[BatchEntry]
    ) -> None:
        """Record a submitted batch and its requests in one transaction, so a restarted job collects it
        instead of paying again."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.execute(
                "INSERT INTO batches VALUES (?, ?, ?, ?, 'open', ?)",
                (batch_id, backend, model, task, time.time()),
            )
            self._db.executemany(
                "INSERT INTO batch_items VALUES (?, ?, ?, ?, ?, ?)",
                [(batch_id, e.custom_id, e.key, e.item_id, e.prompt_version, e.expect) for e in entries],
            )
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    def open_batches(self, backend: str, model: str, task: str) -> list[str]:
        """Ids of batches submitted for this teacher and task and not yet collected, oldest first."""
        rows = self._db.execute(
            "SELECT batch_id FROM batches WHERE backend = ? AND model = ? AND task = ? AND status = 'open' "
            "ORDER BY created",
            (backend, model, task),
        )
        return [r[0] for r in rows]

    def batch_entries(self, batch_id: str) -> list[BatchEntry]:
        rows = self._db.execute(
            "SELECT custom_id, key, item_id, prompt_version, expect FROM batch_items WHERE batch_id = ?",
            (batch_id,),
        )
        return [BatchEntry(*r) for r in rows]

    def set_batch_status(self, batch_id: str, status: str) -> None:
        self._db.execute("UPDATE batches SET status = ? WHERE batch_id = ?", (status, batch_id))

    def batch_status(self, batch_id: str) -> str | None:
        row = self._db.execute("SELECT status FROM batches WHERE batch_id = ?", (batch_id,)).fetchone()
        return None if row is None else row[0]

    def close(self) -> None:
        self._db.close()
