"""`ares-teacher` end to end against the local server: resume, budget, errors, sharing, SIGINT and SIGKILL."""

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from align.data import load_sample_scienceqa
from teacher.cli import main

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
PROBLEMS = load_sample_scienceqa("train")


def write_items(path: Path, n: int, copy_images: bool = True) -> Path:
    """`n` score/correct/judge items; images copied beside the file and named relative to it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for k in range(n):
            p = PROBLEMS[k % len(PROBLEMS)]
            image = None
            if p.image and copy_images:
                image = f"images/{p.id}.png"
                (path.parent / "images").mkdir(exist_ok=True)
                shutil.copyfile(p.image, path.parent / image)
            row = {
                "item_id": f"item{k}",
                "id": p.id,
                "question": p.question,
                "choices": list(p.choices),
                "answer": p.answer,
                "context": p.context,
                "image": image,
                "lecture": p.lecture,
                "solution": p.solution,
                "sentences": [f"Sentence {k} is here.", f"The answer is {p.choices[p.answer]}."],
                "rationale": f"Rationale {k}.",
                "rationale_a": f"It is {p.choices[p.answer]}.",
                "rationale_b": f"Nothing {k}.",
            }
            f.write(json.dumps(row) + "\n")
    return path


def _args(server, tmp_path, task="score", provider="openai", *extra):
    spec = "openai:gpt-4o" if provider == "openai" else "anthropic:claude-3-5-haiku-latest"
    url = server.openai_url if provider == "openai" else server.anthropic_url
    return [
        task,
        "--input",
        str(tmp_path / "items.jsonl"),
        "--teacher",
        spec,
        "--base-url",
        url,
        "--cache",
        str(tmp_path / "c.sqlite"),
        "--timeout",
        "30",  # generous: a loaded machine must not turn a reply into a timeout
        "--no-progress",
        *extra,
    ]


def test_cli_caches_writes_output_and_resumes_without_paying_twice(teacher_server, tmp_path, capsys):
    write_items(tmp_path / "items.jsonl", 12)
    teacher_server.push("429", "500")
    assert (
        main(_args(teacher_server, tmp_path, "score", "openai", "--output", str(tmp_path / "out.jsonl"))) == 0
    )
    rows = [json.loads(x) for x in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [r["item_id"] for r in rows] == [f"item{k}" for k in range(12)]
    assert all(r["status"] == "ok" and len(r["scores"]) == 2 for r in rows)
    assert teacher_server.total() == 14
    assert main(_args(teacher_server, tmp_path)) == 0
    assert teacher_server.total() == 14
    assert "12 cached, 0 done" in capsys.readouterr().err
    assert main(["stats", "--cache", str(tmp_path / "c.sqlite"), "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["tasks"]["score"]["ok"] == 12 and stats["tasks"]["score"]["cost"] > 0


@pytest.mark.parametrize("task", ["correct", "judge"])
def test_cli_other_tasks_through_anthropic(teacher_server, tmp_path, task):
    write_items(tmp_path / "items.jsonl", 4)
    out = tmp_path / "out.jsonl"
    assert main(_args(teacher_server, tmp_path, task, "anthropic", "--output", str(out))) == 0
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert all(r["status"] == "ok" for r in rows)
    assert all((r["text"] if task == "correct" else r["verdict"]) for r in rows)
    assert teacher_server.requests["anthropic.messages"] == 4


def test_cli_budget_exits_4_with_the_message(teacher_server, tmp_path, capsys):
    write_items(tmp_path / "items.jsonl", 10)
    (tmp_path / "prices.yaml").write_text("gpt-4o: [2000.0, 2000.0]\n")
    args = ["--budget", "4.5", "--prices", str(tmp_path / "prices.yaml"), "--concurrency", "1"]
    assert main(_args(teacher_server, tmp_path, "score", "openai", *args)) == 4
    err = capsys.readouterr().err
    assert (
        "budget of $4.50 reached: spent $" in err
        and "raise --budget to continue (cached work is kept)" in err
    )
    assert 0 < teacher_server.total() < 10


def test_cli_input_errors_name_the_line_and_field(teacher_server, tmp_path, capsys):
    path = write_items(tmp_path / "items.jsonl", 2)
    lines = path.read_text().splitlines()
    row = json.loads(lines[1])
    del row["sentences"]
    path.write_text(lines[0] + "\n" + json.dumps(row) + "\n")
    assert main(_args(teacher_server, tmp_path)) == 2
    assert f"{path}:2: missing field 'sentences'" in capsys.readouterr().err
    assert teacher_server.total() == 0


def test_cli_missing_key_names_the_variable(teacher_server, tmp_path, capsys, monkeypatch):
    write_items(tmp_path / "items.jsonl", 1)
    monkeypatch.delenv("OPENAI_API_KEY")
    assert main(_args(teacher_server, tmp_path)) == 2
    assert "OPENAI_API_KEY is not set" in capsys.readouterr().err


def test_cli_export_import_shares_results(teacher_server, tmp_path, capsys):
    write_items(tmp_path / "items.jsonl", 5)
    assert main(_args(teacher_server, tmp_path)) == 0
    assert (
        main(["export", "--cache", str(tmp_path / "c.sqlite"), "--to", str(tmp_path / "shared.jsonl")]) == 0
    )
    other = tmp_path / "other"
    other.mkdir()
    shutil.copy(tmp_path / "items.jsonl", other / "items.jsonl")
    shutil.copytree(tmp_path / "images", other / "images")
    assert main(["import", "--cache", str(other / "c.sqlite"), "--from", str(tmp_path / "shared.jsonl")]) == 0
    before = teacher_server.total()
    assert main(_args(teacher_server, other)) == 0
    assert teacher_server.total() == before  # a teammate's cache answers everything


# -- separate processes: the server in its own process, the job killed or interrupted -----------------------
def _server_stats(url: str) -> dict:
    with urllib.request.urlopen(f"{url}/stats", timeout=5) as r:
        return json.loads(r.read())


def _job(url: str, tmp_path: Path, concurrency: int) -> subprocess.Popen:
    env = {**os.environ, "OPENAI_API_KEY": "sk-test-not-a-real-key", "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "teacher.cli", *_args_for(url, tmp_path, concurrency)]
    return subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _args_for(url: str, tmp_path: Path, concurrency: int) -> list[str]:
    return [
        "score",
        "--input",
        str(tmp_path / "items.jsonl"),
        "--teacher",
        "openai:gpt-4o",
        "--base-url",
        f"{url}/v1",
        "--cache",
        str(tmp_path / "c.sqlite"),
        "--concurrency",
        str(concurrency),
        "--no-progress",
    ]


def _wait_for_requests(url: str, proc: subprocess.Popen, n: int) -> None:
    deadline = time.monotonic() + 60
    while sum(_server_stats(url)["requests"].values()) < n:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.02)


def _rows(tmp_path: Path) -> list[tuple[str, int]]:
    db = sqlite3.connect(tmp_path / "c.sqlite")
    rows = db.execute("SELECT item_id, ok FROM feedback").fetchall()
    db.close()
    return rows


def test_sigkill_half_way_then_resume_pays_at_most_the_in_flight_requests_twice(server_process, tmp_path):
    """Bound asserted: after the resume every item is cached exactly once, and at most `concurrency` (8)
    fingerprints were sent twice (those in flight at the kill); none more than twice."""
    n, concurrency = 160, 8
    write_items(tmp_path / "items.jsonl", n, copy_images=False)
    job = _job(server_process, tmp_path, concurrency)
    _wait_for_requests(server_process, job, 50)
    job.send_signal(signal.SIGKILL)
    job.wait()
    assert job.returncode == -signal.SIGKILL
    cached_at_kill = len(_rows(tmp_path))
    assert 0 < cached_at_kill < n
    resumed = _job(server_process, tmp_path, concurrency)
    _, err = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, err
    assert f"{cached_at_kill} cached" in err
    rows = _rows(tmp_path)
    assert sorted(r[0] for r in rows) == sorted(f"item{k}" for k in range(n)) and all(r[1] for r in rows)
    counts = _server_stats(server_process)["by_fingerprint"]
    assert len(counts) == n
    repeats = [c for c in counts.values() if c > 1]
    assert len(repeats) <= concurrency and max(counts.values()) <= 2


def test_sigint_stops_cleanly_keeping_every_finished_request(server_process, tmp_path):
    n = 120
    write_items(tmp_path / "items.jsonl", n, copy_images=False)
    job = _job(server_process, tmp_path, 8)
    _wait_for_requests(server_process, job, 20)
    job.send_signal(signal.SIGINT)
    _, err = job.communicate(timeout=60)
    assert job.returncode == 130, err
    assert "stopping: no new requests" in err
    sent = sum(_server_stats(server_process)["requests"].values())
    assert len(_rows(tmp_path)) == sent < n  # in-flight requests finished and were cached; nothing lost
