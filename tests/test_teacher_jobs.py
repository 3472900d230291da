"""Caching jobs: retries, budget, resume after SIGKILL, nothing paid twice, the CLI."""

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from align.data import load_sample_scienceqa
from align.data.jsonl import write_problems
from teacher import CachedTeacher, FeedbackCache, make_teacher
from teacher.cli import main as cli_main
from teacher.caching_job import JobConfig, read_items, run_job
from teacher.pricing import PriceTable
from teacher.records import BudgetExceededError

TESTS = Path(__file__).resolve().parent
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


def test_cli_score_stats_export(teacher_server, tmp_path, capsys):
    path = _items_file(tmp_path, n=5)
    cache = str(tmp_path / "cli.sqlite")
    args = [
        "score",
        "--input",
        str(path),
        "--teacher",
        "openai:gpt-4o",
        "--cache",
        cache,
        "--base-url",
        teacher_server.openai_url,
        "--no-progress",
        "--output",
        str(tmp_path / "out.jsonl"),
    ]
    assert cli_main(args) == 0
    rows = [json.loads(x) for x in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert len(rows) == 5 and all(r["ok"] and len(r["scores"]) == 2 for r in rows)
    assert cli_main(["stats", "--cache", cache]) == 0
    assert '"ok": 5' in capsys.readouterr().out
    assert cli_main(["export", "--cache", cache, "--output", str(tmp_path / "x.jsonl")]) == 0
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "1", "question": "q"}\n')
    assert cli_main(["score", "--input", str(bad), "--teacher", "reference:lexical", "--cache", cache]) == 2
    assert "missing field 'choices'" in capsys.readouterr().err


def _stats(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats", timeout=5) as r:
        return json.loads(r.read())


def _free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_sigkill_half_way_then_resume_pays_nothing_twice(tmp_path):
    port = _free_port()
    env = {**os.environ, "OPENAI_API_KEY": "sk-test"}
    server = subprocess.Popen(
        [sys.executable, str(TESTS / "teacher_server.py"), "--port", str(port), "--latency-ms", "100"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        server.stdout.readline()
        path = _items_file(tmp_path, n=60)
        cache = tmp_path / "kill.sqlite"
        cmd = [
            sys.executable,
            "-m",
            "teacher.cli",
            "score",
            "--input",
            str(path),
            "--teacher",
            "openai:gpt-4o",
            "--cache",
            str(cache),
            "--base-url",
            f"http://127.0.0.1:{port}/v1",
            "--concurrency",
            "4",
            "--no-progress",
        ]
        job = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 60
        while time.time() < deadline:
            if cache.exists() and len(FeedbackCache(cache)) >= 15:
                break
            time.sleep(0.05)
        job.send_signal(signal.SIGKILL)
        job.wait()
        cached_at_kill = len(FeedbackCache(cache))
        assert 15 <= cached_at_kill < 60
        assert subprocess.run(cmd, env=env, capture_output=True, timeout=120).returncode == 0
        assert len(FeedbackCache(cache)) == 60
        counts = _stats(port)["by_fingerprint"]
        assert len(counts) == 60
        # only requests in flight at the kill (at most the concurrency, 4) can have been sent twice
        assert sum(c - 1 for c in counts.values()) <= 4 and max(counts.values()) <= 2
    finally:
        server.kill()
        server.wait()
