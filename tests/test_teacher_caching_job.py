"""Caching jobs: retries, budget, resume after SIGKILL, nothing paid twice, the CLI."""

import asyncio

import pytest

from align.data import load_sample_scienceqa
from align.data.jsonl import write_problems
from teacher import CachedTeacher, FeedbackCache, make_teacher
from teacher.caching_job import JobConfig, read_items, run_job
from teacher.pricing import PriceTable
from teacher.records import BudgetExceededError

PROBLEMS = load_sample_scienceqa("train") + load_sample_scienceqa("val") + load_sample_scienceqa("test")


def _items_file(tmp_path, n=30, name="items.jsonl"):
    problems = [PROBLEMS[k % len(PROBLEMS)] for k in range(n)]
    extra = [
        {"item_id": f"item{k}", "sentences": [f"Sentence {k} about magnets.", "Another one."]}
        for k in range(n)
    ]
    path = tmp_path / name
    write_problems(path, problems, extra)
    return path


def _cached(server, tmp_path, **kw):
    teacher = make_teacher("openai:gpt-4o", base_url=server.openai_url, timeout=2.0)
    return CachedTeacher(teacher, FeedbackCache(tmp_path / "c.sqlite"), **kw)


def test_job_retries_transient_errors_and_caches_everything(teacher_server, tmp_path):
    items = read_items(_items_file(tmp_path), "score")
    teacher_server.push("429", "503", "500", "429")
    summary = asyncio.run(
        run_job(
            _cached(teacher_server, tmp_path),
            "score",
            items,
            JobConfig(concurrency=8, backoff_s=0.01, progress=False),
        )
    )
    assert summary.done == 30 and summary.failed == 0 and summary.transient_failed == 0
    assert teacher_server.total() == 34  # 30 items + 4 retried faults
    again = asyncio.run(run_job(_cached(teacher_server, tmp_path), "score", items, JobConfig(progress=False)))
    assert again.cached == 30 and again.done == 0 and teacher_server.total() == 34
    assert max(teacher_server.by_fingerprint.values()) <= 2


def test_rejected_replies_are_cached_failures_with_reasons(teacher_server, tmp_path):
    items = read_items(_items_file(tmp_path, n=6), "score")
    teacher_server.rule("Sentence 2 about", "out_of_range")
    teacher_server.rule("Sentence 4 about", "wrong_count")
    summary = asyncio.run(
        run_job(_cached(teacher_server, tmp_path), "score", items, JobConfig(concurrency=2, progress=False))
    )
    assert summary.failed == 2 and summary.done == 6
    stats = FeedbackCache(tmp_path / "c.sqlite").stats()
    assert stats["tasks"]["score"] == {**stats["tasks"]["score"], "ok": 4, "failed": 2}
    reasons = " ".join(r for r, _ in stats["top_failures"])
    assert "outside [0.0, 1.0]" in reasons and "expected 2 scores" in reasons


def test_persistent_transient_errors_are_not_cached(teacher_server, tmp_path):
    items = read_items(_items_file(tmp_path, n=2), "score")
    teacher_server.rule("Sentence 0 about", "503")
    summary = asyncio.run(
        run_job(
            _cached(teacher_server, tmp_path),
            "score",
            items,
            JobConfig(max_retries=2, backoff_s=0.01, progress=False),
        )
    )
    assert summary.transient_failed == 1 and len(FeedbackCache(tmp_path / "c.sqlite")) == 1


def test_budget_stops_the_job_with_a_clear_message(teacher_server, tmp_path):
    items = read_items(_items_file(tmp_path, n=40), "score")
    prices = PriceTable({"gpt-4o": (2000.0, 2000.0)})  # absurd prices: a few requests exceed the budget
    cached = _cached(teacher_server, tmp_path, prices=prices)
    with pytest.raises(BudgetExceededError, match=r"budget of \$0.50 reached: spent \$.* raise --budget"):
        asyncio.run(run_job(cached, "score", items, JobConfig(concurrency=1, budget=0.5, progress=False)))
    assert 0 < len(FeedbackCache(tmp_path / "c.sqlite")) < 40
