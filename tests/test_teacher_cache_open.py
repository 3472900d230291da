"""Issue 28: many processes and threads opening one new feedback cache at the same instant all succeed, every
row arrives; only a file that is not a feedback cache is called one, and a lock names the timeout."""

import multiprocessing
import sqlite3
import threading
import time

import pytest

from teacher.cache import CacheError, CacheLockedError, FeedbackCache, cache_key
from teacher.records import Feedback, TeacherRequest


def _request(name: str) -> TeacherRequest:
    return TeacherRequest("score", "score-v1", "grade", name, (), {}, {"max_tokens": 8}, 1, name)


def _feedback() -> Feedback:
    return Feedback(task="score", ok=True, scores=[1.0], raw='{"scores": [1.0]}', model="m", cost=0.001)


def _open_and_write(path: str, name: str, rows: int) -> str | None:
    """Open the cache, write `rows` rows of our own and one shared row; the error's text if anything fails."""
    try:
        cache = FeedbackCache(path, timeout_s=30)
        for k in range(rows):
            request = _request(f"{name}/{k}")
            cache.put(cache_key("b", "m", request), request, "b", "m", _feedback())
        shared = _request("shared")
        cache.put(cache_key("b", "m", shared), shared, "b", "m", _feedback())
        cache.close()
    except Exception as err:  # reported to the parent: the test names every failure
        return f"{name}: {type(err).__name__}: {err}"
    return None


def _opener(folder: str, worker: int, threads: int, rounds: int, rows: int, start, results) -> None:
    """One process: `threads` threads that, in every round, wait at the shared start barrier, then all open
    that round's new cache at once."""

    def one(thread: int, errors: list) -> None:
        for r in range(rounds):
            start.wait()
            errors.append((r, _open_and_write(f"{folder}/r{r}.sqlite", f"p{worker}t{thread}", rows)))

    per_thread: list[list] = [[] for _ in range(threads)]
    workers = [threading.Thread(target=one, args=(t, per_thread[t])) for t in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    results.put([entry for errors in per_thread for entry in errors])


def _open_at_once(tmp_path, processes: int, threads: int, rounds: int, rows: int) -> None:
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Barrier(processes * threads)
    results = ctx.Queue()
    procs = [
        ctx.Process(target=_opener, args=(str(tmp_path), w, threads, rounds, rows, start, results))
        for w in range(processes)
    ]
    for p in procs:
        p.start()
    outcomes = [entry for _ in procs for entry in results.get(timeout=300)]
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0] * processes
    failures = [error for _, error in outcomes if error is not None]
    assert failures == [], f"{len(failures)} of {len(outcomes)} opens failed, first: {failures[:3]}"
    assert len(outcomes) == processes * threads * rounds
    for r in range(rounds):
        db = sqlite3.connect(tmp_path / f"r{r}.sqlite")
        assert db.execute("SELECT COUNT(*) FROM feedback").fetchone()[0] == processes * threads * rows + 1
        assert db.execute("SELECT COUNT(*) FROM spend").fetchone()[0] == processes * threads * (rows + 1)
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        db.close()


def test_processes_and_threads_opening_one_new_cache_at_once_all_succeed(tmp_path):
    _open_at_once(tmp_path, processes=4, threads=2, rounds=25, rows=5)


@pytest.mark.slow
def test_many_rounds_of_processes_opening_one_new_cache_at_once(tmp_path):
    _open_at_once(tmp_path, processes=6, threads=2, rounds=250, rows=5)


def _write_lock_held(path) -> sqlite3.Connection:
    """Another connection holding the write lock of a new, still empty file (as an opener does while it
    switches the file to WAL): the moment at which opening used to fail with "not a feedback cache"."""
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    return holder


def test_opening_waits_for_a_connection_that_holds_the_new_files_lock(tmp_path):
    path = tmp_path / "c.sqlite"
    holder = _write_lock_held(path)
    start = threading.Barrier(5)
    errors: list = []

    def open_cache(name: str) -> None:
        start.wait()
        errors.append(_open_and_write(str(path), name, 3))

    openers = [threading.Thread(target=open_cache, args=(f"t{k}",)) for k in range(4)]
    for t in openers:
        t.start()
    start.wait()
    time.sleep(0.5)  # the openers meet the lock (not an assertion: they must succeed whenever it is released)
    holder.execute("COMMIT")
    holder.close()
    for t in openers:
        t.join()
    assert errors == [None] * 4
    cache = FeedbackCache(path)
    assert len(cache) == 4 * 3 + 1 and cache._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_lock_held_past_the_timeout_says_so_and_names_the_timeout(tmp_path):
    path = tmp_path / "c.sqlite"
    holder = _write_lock_held(path)
    with pytest.raises(CacheLockedError) as err:
        FeedbackCache(path, timeout_s=0.3)
    holder.close()
    message = str(err.value)
    assert "locked by another connection" in message and "0.3 s" in message
    assert "not a feedback cache" not in message
    assert len(FeedbackCache(path, timeout_s=0.3)) == 0  # released: the same file opens


def test_only_files_that_are_not_a_feedback_cache_are_called_so_and_are_left_untouched(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("hello\n" * 100)
    with pytest.raises(CacheError, match="is not a feedback cache \\(not a SQLite database\\)"):
        FeedbackCache(text)
    assert text.read_text() == "hello\n" * 100
    other = tmp_path / "app.db"
    db = sqlite3.connect(other)
    db.execute("CREATE TABLE users (name TEXT)")
    db.commit()
    db.close()
    before = other.read_bytes()
    with pytest.raises(
        CacheError, match="not a feedback cache \\(a SQLite database with other tables: users\\)"
    ):
        FeedbackCache(other)
    assert other.read_bytes() == before and not (tmp_path / "app.db-wal").exists()
    empty = tmp_path / "empty.sqlite"
    empty.touch()
    assert len(FeedbackCache(empty)) == 0  # an empty file is a new cache
