"""The SQLite feedback cache: what the key covers, several processes writing at once, JSONL sharing, stats."""

import dataclasses
import json
import multiprocessing
import sqlite3

import pytest

from align.data import load_sample_scienceqa
from teacher import CachedTeacher, make_teacher
from teacher.cache import BatchEntry, FeedbackCache, cache_key
from teacher.limits import RetryPolicy
from teacher.records import Feedback, TeacherRequest, TransientError

SECRET = "sk-live-very-secret-key"


def _request(n: int = 0, **changes) -> TeacherRequest:
    base = TeacherRequest(
        task="score",
        prompt_version="score-v1",
        system="grade",
        user_text=f"question {n}",
        images=(b"\x89PNG fake image",),
        schema={"type": "object"},
        params={"temperature": 0.0, "max_tokens": 64},
        expect=2,
        item_id=f"item{n}",
    )
    return dataclasses.replace(base, **changes)


def _feedback(ok: bool = True) -> Feedback:
    return Feedback(
        task="score",
        ok=ok,
        failure=None if ok else "expected 2 scores, got 3",
        scores=[1.0, 0.5] if ok else None,
        raw='{"scores": [1.0, 0.5]}',
        model="gpt-4o-2024-08-06",
        prompt_version="score-v1",
        input_tokens=100,
        output_tokens=10,
        cost=0.00035,
        latency_s=0.2,
    )


def test_key_covers_backend_model_prompt_images_and_sampling_but_not_item_id():
    key = cache_key("openai", "gpt-4o", _request())
    different = [
        cache_key("anthropic", "gpt-4o", _request()),
        cache_key("openai", "gpt-4o-mini", _request()),
        cache_key("openai", "gpt-4o", _request(prompt_version="score-v2")),
        cache_key("openai", "gpt-4o", _request(images=(b"\x89PNG other image",))),
        cache_key("openai", "gpt-4o", _request(params={"temperature": 0.7, "max_tokens": 64})),
        cache_key("openai", "gpt-4o", _request(user_text="question 1")),
        cache_key("openai", "gpt-4o", _request(expect=3)),
    ]
    assert len({key, *different}) == 1 + len(different)
    assert cache_key("openai", "gpt-4o", _request(item_id="renamed")) == key


def test_put_get_round_trip_marks_cached_and_keeps_usage(tmp_path):
    cache = FeedbackCache(tmp_path / "c.sqlite")
    key = cache_key("openai", "gpt-4o", _request())
    assert cache.get(key) is None
    cache.put(key, _request(), "openai", "gpt-4o", _feedback())
    hit = cache.get(key)
    assert hit.cached and hit.ok and hit.scores == [1.0, 0.5] and hit.cost == 0.00035
    assert (hit.input_tokens, hit.output_tokens, hit.model) == (100, 10, "gpt-4o-2024-08-06")
    assert cache._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_no_api_key_reaches_the_database(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    path = tmp_path / "c.sqlite"
    cache = FeedbackCache(path)
    cache.put(cache_key("openai", "gpt-4o", _request()), _request(), "openai", "gpt-4o", _feedback())
    cache.export_jsonl(tmp_path / "out.jsonl")
    cache.close()
    for file in tmp_path.iterdir():
        assert SECRET.encode() not in file.read_bytes(), file


def _writer(path: str, worker: int, n: int) -> None:
    cache = FeedbackCache(path, timeout_s=60)
    for k in range(n):
        # half the keys are shared by every worker (the same request from two ranks), half are private
        request = _request(k if k % 2 == 0 else 1000 * (worker + 1) + k)
        cache.put(cache_key("openai", "gpt-4o", request), request, "openai", "gpt-4o", _feedback())
    cache.close()


def test_several_processes_write_at_once_without_losing_or_duplicating_rows(tmp_path):
    path = str(tmp_path / "c.sqlite")
    FeedbackCache(path).close()
    workers, n = 4, 60
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(path, w, n)) for w in range(workers)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0] * workers
    shared, private = n // 2, workers * (n // 2)
    db = sqlite3.connect(path)
    assert db.execute("SELECT COUNT(*), COUNT(DISTINCT key) FROM feedback").fetchone() == (
        shared + private,
        shared + private,
    )
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_export_import_shares_a_cache_and_keeps_existing_rows(tmp_path):
    a = FeedbackCache(tmp_path / "a.sqlite")
    for n in range(5):
        a.put(cache_key("openai", "gpt-4o", _request(n)), _request(n), "openai", "gpt-4o", _feedback(n != 3))
    assert a.export_jsonl(tmp_path / "shared.jsonl") == 5
    rows = [json.loads(x) for x in (tmp_path / "shared.jsonl").read_text().splitlines()]
    assert {r["item_id"] for r in rows} == {f"item{n}" for n in range(5)}
    b = FeedbackCache(tmp_path / "b.sqlite")
    mine = _feedback()
    mine.scores = [0.0, 0.0]
    b.put(cache_key("openai", "gpt-4o", _request(0)), _request(0), "openai", "gpt-4o", mine)
    assert b.import_jsonl(tmp_path / "shared.jsonl") == 4  # the existing key is kept
    assert len(b) == 5 and b.get(cache_key("openai", "gpt-4o", _request(0))).scores == [0.0, 0.0]
    assert b.get(cache_key("openai", "gpt-4o", _request(3))).failure == "expected 2 scores, got 3"
    assert b.import_jsonl(tmp_path / "shared.jsonl", overwrite=True) == 5
    assert b.get(cache_key("openai", "gpt-4o", _request(0))).scores == [1.0, 0.5]


def test_stats_count_ok_failed_tokens_cost_and_reasons(tmp_path):
    cache = FeedbackCache(tmp_path / "c.sqlite")
    for n in range(4):
        cache.put(cache_key("x", "m", _request(n)), _request(n), "x", "m", _feedback(ok=n < 3))
    stats = cache.stats()
    assert stats["total"] == 4
    score = stats["tasks"]["score"]
    assert (score["ok"], score["failed"], score["input_tokens"], score["output_tokens"]) == (3, 1, 400, 40)
    assert abs(score["cost"] - 4 * 0.00035) < 1e-12
    assert stats["top_failures"] == [("expected 2 scores, got 3", 1)]


def test_batches_are_persisted_until_collected(tmp_path):
    cache = FeedbackCache(tmp_path / "c.sqlite")
    entries = [BatchEntry(f"c{n}", f"k{n}", f"item{n}", "score-v1", 2) for n in range(3)]
    cache.add_batch("batch_1", "openai", "gpt-4o", "score", entries)
    cache.close()
    again = FeedbackCache(tmp_path / "c.sqlite")
    assert again.open_batches("openai", "gpt-4o", "score") == ["batch_1"]
    assert again.open_batches("openai", "gpt-4o", "judge") == []
    assert again.batch_entries("batch_1") == entries
    again.set_batch_status("batch_1", "collected")
    assert again.open_batches("openai", "gpt-4o", "score") == []


def test_cached_teacher_retries_transient_errors_only_when_asked(teacher_server, tmp_path):
    problem = load_sample_scienceqa("train")[0]
    teacher = make_teacher("openai:gpt-4o", base_url=teacher_server.openai_url, timeout=30.0)
    teacher_server.push("429")
    with pytest.raises(TransientError):
        CachedTeacher(teacher, FeedbackCache(tmp_path / "a.sqlite")).score_sentences(
            problem, ["One.", "Two."]
        )
    teacher_server.push("503", "429")
    cached = CachedTeacher(teacher, FeedbackCache(tmp_path / "b.sqlite"), retry=RetryPolicy(base_s=0.001))
    assert cached.score_sentences(problem, ["One.", "Two."]).ok
    assert teacher_server.total() == 4 and len(cached.cache) == 1
