"""A persistent feedback cache: SQLite in WAL mode, safe for several processes writing at once.

Key = sha256(backend name, model, request fingerprint), so the same request to the same model is paid for
once. Rows hold the raw reply, the parsed payload, the failure reason, token usage, cost, latency and time.
Beside them: a spend ledger (every paid result, so a budget can cap the total across runs), claims (a job
leases the items it is sending, so two jobs over one cache split the work), and provider batches (recorded
as an intent before they are submitted, so a kill at any moment never leads to paying for a batch twice).
No API key ever reaches a request or a row. Any number of processes and threads may open one cache at once,
new or not (`teacher.sqlite_open`).
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import sqlite3
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from teacher.records import Feedback, TeacherRequest
from teacher.sqlite_open import CacheError, CacheLockedError, is_busy, locked_message, open_sqlite

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
    reported_model TEXT,
    expect INTEGER
);
CREATE INDEX IF NOT EXISTS feedback_task ON feedback(task, ok);
CREATE TABLE IF NOT EXISTS claims (
    key TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    expires REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS batches (
    batch_id TEXT PRIMARY KEY,
    backend TEXT NOT NULL,
    model TEXT NOT NULL,
    task TEXT NOT NULL,
    status TEXT NOT NULL,
    created REAL NOT NULL,
    tag TEXT,
    n INTEGER
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
    "expect",
)
_SPEND = """
CREATE TABLE spend (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created REAL NOT NULL,
    backend TEXT,
    model TEXT,
    task TEXT,
    key TEXT,
    cost REAL,
    input_tokens INTEGER,
    output_tokens INTEGER
)
"""
ROW_FIELDS = frozenset(_COLUMNS)  # the fields of an exported row
LIVE_BATCH = "('open', 'submitting')"  # batch states whose requests may still be (or become) paid for


def new_owner() -> str:
    """A claim owner: host, process id and a nonce (two jobs in one process are two owners)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def owner_alive(owner: str) -> bool:
    """False when the owner is a process of this host that no longer exists (a killed job): its claims
    lapse at once instead of at their expiry. Owners on other hosts count as alive until they expire."""
    host, _, rest = owner.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def same_file(a: str | Path, b: str | Path) -> bool:
    """Whether two paths name one file (or would, once created)."""
    a, b = Path(a), Path(b)
    if a.exists() and b.exists():
        return os.path.samefile(a, b)
    return a.resolve() == b.resolve()


def is_cache_file(path: str | Path, cache: str | Path) -> bool:
    """Whether `path` is the cache or one of SQLite's companion files (`-wal`, `-shm`, `-journal`)."""
    return any(same_file(path, f"{cache}{suffix}") for suffix in ("", "-wal", "-shm", "-journal"))


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
        """Open (or create) the cache. Any number of processes and threads may open one file at once, new
        or not: the WAL switch, the schema and migrations are retried while another connection holds the
        lock, for up to `timeout_s` seconds (then `CacheLockedError`, naming the timeout). A file that is
        not a feedback cache (a text file, another program's database) raises `CacheError` and is left
        untouched."""
        self.path = Path(path)
        self.timeout_s = timeout_s
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = open_sqlite(self.path, timeout_s, self._initialise)

    def _initialise(self, db: sqlite3.Connection) -> None:
        """WAL mode, then the schema and migrations in one write transaction (one connection creates it).
        Another program's database is refused before anything is written to it."""
        self._refuse_other_schema(db)
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = NORMAL")
        db.execute("BEGIN IMMEDIATE")
        self._refuse_other_schema(db)
        for statement in _SCHEMA.split(";"):
            if statement.strip():
                db.execute(statement)
        self._migrate(db)
        db.execute("COMMIT")

    def _refuse_other_schema(self, db: sqlite3.Connection) -> None:
        """A database with tables but no feedback table of ours is not a feedback cache."""
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if tables and "feedback" not in tables:
            shown = ", ".join(sorted(tables)[:5])
            raise CacheError(
                f"cache {self.path} is not a feedback cache (a SQLite database with other tables: {shown})"
            )
        if "feedback" in tables:
            missing = set(_COLUMNS[:7]) - {r[1] for r in db.execute("PRAGMA table_info(feedback)")}
            if missing:
                raise CacheError(
                    f"cache {self.path} is not a feedback cache (its table 'feedback' lacks the columns "
                    f"{', '.join(sorted(missing))})"
                )

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """One write transaction, taken at once (so concurrent writers queue instead of deadlocking)."""
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as err:
            if is_busy(err):
                raise CacheLockedError(locked_message("cache", self.path, self.timeout_s, err)) from None
            raise
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _in_live_batch(self, key: str) -> bool:
        found = self._db.execute(
            "SELECT 1 FROM batch_items i JOIN batches b ON b.batch_id = i.batch_id "
            f"WHERE i.key = ? AND b.status IN {LIVE_BATCH}",
            (key,),
        )
        return found.fetchone() is not None

    def _held_by_other(self, key: str, owner: str, now: float) -> bool:
        held = self._db.execute("SELECT owner, expires FROM claims WHERE key = ?", (key,)).fetchone()
        return held is not None and held[0] != owner and held[1] > now and owner_alive(held[0])

    def _insert_batch(
        self,
        batch_id: str,
        ident: tuple[str, str, str],
        status: str,
        tag: str | None,
        entries: list[BatchEntry],
    ) -> None:
        self._db.execute(
            "INSERT INTO batches (batch_id, backend, model, task, status, created, tag, n) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (batch_id, *ident, status, time.time(), tag, len(entries)),
        )
        self._db.executemany(
            "INSERT INTO batch_items VALUES (?, ?, ?, ?, ?, ?)",
            [(batch_id, e.custom_id, e.key, e.item_id, e.prompt_version, e.expect) for e in entries],
        )

    @staticmethod
    def _migrate(db: sqlite3.Connection) -> None:
        """Columns and tables added since a cache was first written; the spend ledger of an older cache
        starts with one row holding what its rows cost. Runs inside the opening transaction."""
        for table, column, kind in (
            ("feedback", "reported_model", "TEXT"),
            ("feedback", "expect", "INTEGER"),
            ("batches", "tag", "TEXT"),
            ("batches", "n", "INTEGER"),
        ):
            if column not in {r[1] for r in db.execute(f"PRAGMA table_info({table})")}:
                db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
        known = db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'spend'")
        if known.fetchone() is None:
            db.execute(_SPEND)
            db.execute(
                "INSERT INTO spend (created, task, cost, input_tokens, output_tokens) "
                "SELECT ?, 'before-ledger', SUM(cost), SUM(input_tokens), SUM(output_tokens) FROM feedback "
                "HAVING COUNT(*) > 0",
                (time.time(),),
            )

    def get(self, key: str) -> Feedback | None:
        row = self._db.execute(f"SELECT {','.join(_COLUMNS)} FROM feedback WHERE key = ?", (key,)).fetchone()
        return None if row is None else self._feedback(dict(zip(_COLUMNS, row, strict=True)))

    def put(
        self,
        key: str,
        request: TeacherRequest,
        backend: str,
        model: str,
        fb: Feedback,
        claim_owner: str | None = None,
    ) -> None:
        """Store (or replace) one fresh result, add what it cost to the spend ledger and drop the claim on
        it, all in one transaction: a kill leaves either everything or nothing."""
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
            request.expect,
        )
        with self._transaction():
            self._db.execute(
                f"INSERT OR REPLACE INTO feedback ({','.join(_COLUMNS)}) VALUES ({','.join('?' * len(row))})",
                row,
            )
            if fb.cost or fb.input_tokens or fb.output_tokens:
                self._db.execute(
                    "INSERT INTO spend (created, backend, model, task, key, cost, input_tokens, output_tokens) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (time.time(), backend, model, fb.task, key, fb.cost, fb.input_tokens, fb.output_tokens),
                )
            if claim_owner is not None:
                self._db.execute("DELETE FROM claims WHERE key = ? AND owner = ?", (key, claim_owner))

    def total_spent(self) -> float:
        """Dollars recorded in the spend ledger: every paid result ever written to this cache (imports
        excluded: someone else paid for them)."""
        return float(self._db.execute("SELECT COALESCE(SUM(cost), 0) FROM spend").fetchone()[0])

    # -- claims: jobs over one cache split the work ---------------------------------------------------------
    def claim(self, key: str, owner: str, lease_s: float, resend_failed_before: float | None = None) -> str:
        """Lease `key` for `owner` before sending it: 'claimed', 'cached' (a result is there: ok, or failed
        and not to be re-sent: `resend_failed_before` re-sends failures written before that time), or
        'taken' (another live job holds it, or it sits in a provider batch)."""
        now = time.time()
        with self._transaction():
            row = self._db.execute("SELECT ok, created FROM feedback WHERE key = ?", (key,)).fetchone()
            if row is not None and (row[0] or resend_failed_before is None or row[1] >= resend_failed_before):
                outcome = "cached"
            elif self._in_live_batch(key) or self._held_by_other(key, owner, now):
                outcome = "taken"
            else:
                self._db.execute(
                    "INSERT OR REPLACE INTO claims VALUES (?, ?, ?)", (key, owner, now + lease_s)
                )
                outcome = "claimed"
        return outcome

    def renew_claim(self, key: str, owner: str, lease_s: float) -> None:
        with self._transaction():
            self._db.execute(
                "UPDATE claims SET expires = ? WHERE key = ? AND owner = ?",
                (time.time() + lease_s, key, owner),
            )

    def release_claims(self, owner: str, key: str | None = None) -> None:
        """Drop the owner's claim on `key`, or all of its claims."""
        with self._transaction():
            if key is None:
                self._db.execute("DELETE FROM claims WHERE owner = ?", (owner,))
            else:
                self._db.execute("DELETE FROM claims WHERE key = ? AND owner = ?", (key, owner))

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
        """Write every row as one JSON line; returns the count. Refuses to write over the cache itself."""
        from teacher.exchange import export_rows

        return export_rows(self, path)

    def import_jsonl(self, path: str | Path, overwrite: bool = False) -> int:
        """Merge rows from an export, each validated like a live reply (all or nothing); existing keys are
        kept unless `overwrite`. Returns rows written."""
        from teacher.exchange import import_rows

        return import_rows(self, path, overwrite)

    def insert_rows(self, rows: list[dict[str, Any]], overwrite: bool) -> int:
        """Insert validated rows in one transaction; returns how many were written."""
        verb = "INSERT OR REPLACE" if overwrite else "INSERT OR IGNORE"
        before = self._db.total_changes
        with self._transaction():
            self._db.executemany(
                f"{verb} INTO feedback ({','.join(_COLUMNS)}) VALUES ({','.join('?' * len(_COLUMNS))})",
                [tuple(row.get(c) for c in _COLUMNS) for row in rows],
            )
        return self._db.total_changes - before

    # -- provider batches (OpenAI Batch API, Anthropic Message Batches) ----------------------------------
    def add_batch(
        self, batch_id: str, backend: str, model: str, task: str, entries: list[BatchEntry]
    ) -> None:
        """Record a submitted batch and its requests in one transaction, so a restarted job collects it
        instead of paying again."""
        with self._transaction():
            self._insert_batch(batch_id, (backend, model, task), "open", None, entries)

    def add_batch_intent(
        self, tag: str, backend: str, model: str, task: str, entries: list[BatchEntry], owner: str
    ) -> list[BatchEntry]:
        """Record a batch before it is submitted (status 'submitting', id `intent:<tag>`; the provider will
        carry `tag` too), keeping only the entries that no result, live batch or other live job's claim
        already covers; returns those. A job killed after the provider accepted the batch finds the intent
        on resume and looks the batch up by its tag instead of submitting again."""
        now = time.time()
        with self._transaction():
            kept = [
                e
                for e in entries
                if not self._db.execute(
                    "SELECT 1 FROM feedback WHERE key = ? AND ok = 1", (e.key,)
                ).fetchone()
                and not self._in_live_batch(e.key)
                and not self._held_by_other(e.key, owner, now)
            ]
            if kept:
                self._insert_batch(f"intent:{tag}", (backend, model, task), "submitting", tag, kept)
        return kept

    def confirm_batch(self, tag: str, batch_id: str) -> None:
        """The provider accepted the intent `tag` as `batch_id`: it is now an open batch."""
        local_id = f"intent:{tag}"
        with self._transaction():
            self._db.execute(
                "UPDATE batches SET batch_id = ?, status = 'open' WHERE batch_id = ?", (batch_id, local_id)
            )
            self._db.execute("UPDATE batch_items SET batch_id = ? WHERE batch_id = ?", (batch_id, local_id))

    def drop_intent(self, tag: str) -> None:
        """The intent `tag` never reached the provider: its requests are free to be submitted again."""
        self.set_batch_status(f"intent:{tag}", "abandoned")

    def intents(self, backend: str, model: str, task: str) -> list[tuple[str, float, int]]:
        """(tag, time recorded, number of requests) of batches recorded but not known to be accepted."""
        rows = self._db.execute(
            "SELECT tag, created, n FROM batches WHERE backend = ? AND model = ? AND task = ? "
            "AND status = 'submitting' ORDER BY created",
            (backend, model, task),
        )
        return [(r[0], r[1], r[2]) for r in rows]

    def known_batch_ids(self) -> set[str]:
        return {r[0] for r in self._db.execute("SELECT batch_id FROM batches")}

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
        with self._transaction():
            self._db.execute("UPDATE batches SET status = ? WHERE batch_id = ?", (status, batch_id))

    def batch_status(self, batch_id: str) -> str | None:
        row = self._db.execute("SELECT status FROM batches WHERE batch_id = ?", (batch_id,)).fetchone()
        return None if row is None else row[0]

    def close(self) -> None:
        self._db.close()
