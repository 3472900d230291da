"""Opening a SQLite file that several processes and threads may open, create and write at the same moment.

SQLite's busy timeout does not cover every step of opening a new file: switching it to WAL reads the header
and then upgrades to a write lock, and that upgrade fails at once ("database is locked") while another
connection holds the write lock, whatever the timeout. So every step of opening (the WAL switch, creating
the schema, migrations) runs under `open_sqlite`, which retries such failures until its deadline, and the
schema is created inside one `BEGIN IMMEDIATE` transaction, so exactly one connection creates it.
"""

from __future__ import annotations

import random
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

_BUSY, _LOCKED, _NOTADB = 5, 6, 26  # SQLite primary result codes


class CacheError(ValueError):
    """A cache file that cannot be used (not a SQLite database, another program's database, or an output
    path that is the cache)."""


class CacheLockedError(CacheError):
    """Another connection held the cache's lock for longer than the timeout."""


def is_busy(err: sqlite3.Error) -> bool:
    """Whether SQLite failed because another connection holds a lock (SQLITE_BUSY / SQLITE_LOCKED)."""
    code = getattr(err, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (_BUSY, _LOCKED)
    return isinstance(err, sqlite3.OperationalError) and ("locked" in str(err) or "busy" in str(err))


def locked_message(what: str, path: Path, timeout_s: float, err: sqlite3.Error) -> str:
    return (
        f"{what} {path} stayed locked by another connection for the whole timeout of {timeout_s:g} s "
        f"(timeout_s={timeout_s:g}; SQLite says: {err}); retry once the other job's write finishes, or "
        "give a longer timeout_s"
    )


def open_sqlite(
    path: Path,
    timeout_s: float,
    initialise: Callable[[sqlite3.Connection], None],
    what: str = "cache",
) -> sqlite3.Connection:
    """A connection (autocommit, usable from any thread) on which `initialise` has run to the end.

    `initialise` is retried from the start, after a short random wait, whenever a lock makes it fail, until
    `timeout_s` has passed since the call; it must leave no transaction open when it fails (roll back).
    A file that is not a SQLite database raises `CacheError` naming it; a lock that outlasts the timeout
    `CacheLockedError` naming the timeout; `CacheError`s raised by `initialise` pass through.
    """
    deadline = time.monotonic() + timeout_s
    try:
        db = sqlite3.connect(path, timeout=timeout_s, isolation_level=None, check_same_thread=False)
    except sqlite3.Error as err:
        raise CacheError(f"cannot open {what} {path} (SQLite says: {err})") from None
    pause = 0.002
    try:
        while True:
            left = deadline - time.monotonic()
            db.execute(f"PRAGMA busy_timeout = {max(1, int(left * 1000))}")
            try:
                initialise(db)
                break
            except sqlite3.Error as err:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                if not is_busy(err):
                    raise
                if time.monotonic() + pause > deadline:
                    raise CacheLockedError(locked_message(what, path, timeout_s, err)) from None
                time.sleep(random.uniform(pause / 2, pause))
                pause = min(pause * 2, 0.1)
        db.execute(f"PRAGMA busy_timeout = {int(timeout_s * 1000)}")
    except CacheError:
        db.close()
        raise
    except sqlite3.DatabaseError as err:
        db.close()
        if getattr(err, "sqlite_errorcode", 0) & 0xFF == _NOTADB:
            raise CacheError(f"{what} {path} is not a feedback cache (not a SQLite database)") from None
        raise CacheError(f"cannot use {what} {path} (SQLite says: {err})") from None
    return db
