"""Issue 14: a caching job survives any single reply, never overspends, never destroys or poisons its cache.
Every case runs against the local protocol server and asserts what the server saw per item, what the cache
holds and the exit status."""

import asyncio
import json
import os
import socket
import sqlite3
import subprocess
import sys

import pytest
from test_teacher_cli import _args, write_items

from align.data import load_sample_scienceqa
from teacher import FeedbackCache, make_teacher
from teacher.cli import main
from teacher.jobs import JobConfig, JobItem, JobRunner
from teacher.pricing import PriceTable

PROBLEMS = load_sample_scienceqa("train")


def _output(path):
    return [json.loads(x) for x in path.read_text().splitlines()]


# -- 1. one unusual reply fails its item, never the job -----------------------------------------------------
@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_unusual_replies_fail_their_item_and_the_job_goes_on(teacher_server, tmp_path, capsys, provider):
    write_items(tmp_path / "items.jsonl", 8)
    faults = {1: "not_json", 2: "html", 3: "empty_choices", 4: "400"}
    for k, fault in faults.items():
        teacher_server.rule(f"Sentence {k} is here", fault)
    out = tmp_path / "out.jsonl"
    assert main(_args(teacher_server, tmp_path, "score", provider, "--output", str(out))) == 0
    err = capsys.readouterr().err
    rows = _output(out)
    status = [r["status"] for r in rows]
    # Anthropic's empty content is a reply without JSON: it gets the repair turn (and fails again)
    assert status == ["ok", "failed", "failed", "failed", "failed", "ok", "ok", "ok"]
    assert "8 items: 0 cached, 4 done, 4 failed" in err
    reasons = {k: rows[k]["failure"] for k in faults}
    assert "200 with a body that is not valid JSON" in reasons[1] and "upstream connect error" in reasons[1]
    assert "200 with a text/html body, not JSON" in reasons[2] and "502 Bad Gateway" in reasons[2]
    assert "refused this request (400)" in reasons[4] and "injected 400" in reasons[4]
    if provider == "openai":
        assert "200 with no choices" in reasons[3]
    else:
        assert "no JSON object" in reasons[3] and "after one repair retry" in reasons[3]
    per_item = [teacher_server.sent(f"Sentence {k} is here") for k in range(8)]
    assert per_item == [1, 1, 1, 1 if provider == "openai" else 2, 1, 1, 1, 1]
    cache = FeedbackCache(tmp_path / "c.sqlite")
    assert len(cache) == 8 and cache.stats()["tasks"]["score"]["failed"] == 4
    before = teacher_server.total()
    assert main(_args(teacher_server, tmp_path, "score", provider)) == 0  # a re-run pays for none of them
    assert teacher_server.total() == before and "8 cached, 0 done" in capsys.readouterr().err


def test_a_rejected_key_mid_job_stops_it_with_summary_and_output(teacher_server, tmp_path, capsys):
    write_items(tmp_path / "items.jsonl", 6)
    teacher_server.rule("Sentence 3 is here", "401")
    out = tmp_path / "out.jsonl"
    args = _args(teacher_server, tmp_path, "score", "openai", "--output", str(out), "--concurrency", "1")
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "rejected the API key (401)" in err and "6 items: 0 cached, 3 done, 0 failed, 3 not sent" in err
    assert [r["status"] for r in _output(out)] == ["ok"] * 3 + ["pending"] * 3
    assert len(FeedbackCache(tmp_path / "c.sqlite")) == 3  # the refused item is not cached as failed


def test_an_unexpected_error_fails_its_item_uncached_and_the_job_goes_on(teacher_server, tmp_path):
    teacher = make_teacher("openai:gpt-4o", base_url=teacher_server.openai_url, timeout=30.0)
    real = teacher.backend.complete

    async def complete(request, followup=()):
        if "Sentence 2 " in request.user_text:
            raise KeyError("a bug somewhere")
        return await real(request, followup)

    teacher.backend.complete = complete
    items = [JobItem(f"i{k}", PROBLEMS[k % 5], ([f"Sentence {k} here."],)) for k in range(5)]
    runner = JobRunner(teacher, FeedbackCache(tmp_path / "c.sqlite"), "score", JobConfig(concurrency=2))

    async def go():
        try:
            return await runner.run(items)
        finally:
            await teacher.aclose()

    report = asyncio.run(go())
    assert (report.done, report.failed, report.uncached_failures, report.stopped) == (4, 1, 1, None)
    assert len(runner.cache) == 4  # not poisoned: a re-run sends the item again


# -- 2. the budget covers the repair turn and the final message quotes the final spend ------------------------
def test_budget_holds_with_long_replies_and_repairs(teacher_server, tmp_path, capsys):
    """Every reply is max_tokens of prose, so every item wants a repair turn with that prose attached
    (~$0.0115 for the first turn, ~$0.014 for the repair at gpt-4o prices). An estimate of the first turn
    alone would launch 5 items and spend ~$0.12 of this $0.06 budget."""
    write_items(tmp_path / "items.jsonl", 10, copy_images=False)
    teacher_server.rule("Sentence", "long")
    args = _args(teacher_server, tmp_path, "score", "openai", "--budget", "0.06", "--concurrency", "1")
    assert main(args) == 4
    err = capsys.readouterr().err
    cache = FeedbackCache(tmp_path / "c.sqlite")
    spent = cache.total_spent()
    assert 0.04 < spent <= 0.06
    assert teacher_server.sent("Sentence 0 is here") == 2  # the first item could afford its repair turn
    summary = next(line for line in err.splitlines() if line.startswith("score: 10 items"))
    assert f"cost ${spent:.4f}" in summary and "repair turns skipped to stay within the budget" in summary
    assert f"budget of $0.06 reached: spent ${spent:.4f} on {len(cache)} requests" in err  # final, not early
    skipped = [r for r in cache.rows() if "repair turn skipped" in (r["failure"] or "")]
    assert skipped and all(
        teacher_server.sent(r["item_id"].replace("item", "Sentence ") + " is") == 1 for r in skipped
    )


def test_budget_is_per_run_and_budget_total_caps_every_run_together(teacher_server, tmp_path, capsys):
    (tmp_path / "prices.yaml").write_text("gpt-4o: [10.0, 10.0]\n")
    prices = ["--prices", str(tmp_path / "prices.yaml"), "--concurrency", "1"]
    write_items(tmp_path / "items.jsonl", 4, copy_images=False)
    assert main(_args(teacher_server, tmp_path, "score", "openai", *prices, "--budget-total", "0.05")) == 0
    first = FeedbackCache(tmp_path / "c.sqlite").total_spent()
    assert 0 < first < 0.05
    write_items(tmp_path / "items.jsonl", 40, copy_images=False)  # the same 4 and 36 more
    assert main(_args(teacher_server, tmp_path, "score", "openai", *prices, "--budget-total", "0.05")) == 4
    err = capsys.readouterr().err
    total = FeedbackCache(tmp_path / "c.sqlite").total_spent()
    assert first < total <= 0.05
    assert f"total budget of $0.05 for this cache reached: spent ${first:.4f} before this run" in err
    assert "raise --budget-total" in err
    # --budget is per run: each run may spend it again
    before = total
    assert main(_args(teacher_server, tmp_path, "score", "openai", *prices, "--budget", "0.03")) == 4
    assert FeedbackCache(tmp_path / "c.sqlite").total_spent() - before > 0.015


def test_an_older_cache_starts_its_spend_ledger_with_what_its_rows_cost(teacher_server, tmp_path):
    write_items(tmp_path / "items.jsonl", 3, copy_images=False)
    assert main(_args(teacher_server, tmp_path)) == 0
    db = sqlite3.connect(tmp_path / "c.sqlite")
    cost = db.execute("SELECT SUM(cost) FROM feedback").fetchone()[0]
    db.execute("DROP TABLE spend")  # as written before the ledger existed
    db.commit()
    db.close()
    assert FeedbackCache(tmp_path / "c.sqlite").total_spent() == pytest.approx(cost) and cost > 0


# -- 3. no output path may be the cache (or the input) -------------------------------------------------------
def test_output_or_export_onto_the_cache_is_refused(teacher_server, tmp_path, capsys):
    write_items(tmp_path / "items.jsonl", 12, copy_images=False)
    assert main(_args(teacher_server, tmp_path)) == 0
    cache = tmp_path / "c.sqlite"
    for output in (cache, tmp_path / "." / "c.sqlite", tmp_path / "c.sqlite-wal"):
        assert main(_args(teacher_server, tmp_path, "score", "openai", "--output", str(output))) == 2
        assert "is the cache itself" in capsys.readouterr().err
    assert main(["export", "--cache", str(cache), "--to", str(cache)]) == 2
    assert "is the cache itself" in capsys.readouterr().err
    os.symlink(cache, tmp_path / "link.sqlite")
    assert main(["export", "--cache", str(cache), "--to", str(tmp_path / "link.sqlite")]) == 2
    items = tmp_path / "items.jsonl"
    assert main(_args(teacher_server, tmp_path, "score", "openai", "--output", str(items))) == 2
    assert "is the input file" in capsys.readouterr().err
    assert len(FeedbackCache(cache)) == 12 and len(items.read_text().splitlines()) == 12


# -- 4. import validates every row like a live reply ----------------------------------------------------------
def test_import_rejects_rows_a_live_reply_would_fail_and_names_the_line(teacher_server, tmp_path, capsys):
    write_items(tmp_path / "items.jsonl", 3, copy_images=False)
    assert main(_args(teacher_server, tmp_path)) == 0
    export = tmp_path / "shared.jsonl"
    assert main(["export", "--cache", str(tmp_path / "c.sqlite"), "--to", str(export)]) == 0
    rows = _output(export)
    assert all(r["expect"] == 2 for r in rows)
    forged = dict(rows[1], payload=json.dumps({"scores": [7.0, -3.0], "text": None, "verdict": None}), raw="")
    short = dict(rows[2], payload=json.dumps({"scores": [0.5], "text": None, "verdict": None}), raw="")
    swapped = dict(rows[0], payload=json.dumps({"scores": [1.0, 1.0], "text": None, "verdict": None}))
    bad = tmp_path / "bad.jsonl"
    lines = [json.dumps(rows[0]), json.dumps(forged), json.dumps(short), json.dumps(swapped), "{not json"]
    bad.write_text("\n".join(lines) + "\n")
    target = tmp_path / "mine.sqlite"
    assert main(["import", "--cache", str(target), "--from", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:2: score 0 = 7.0 is outside [0.0, 1.0]" in err
    assert f"{bad}:3: expected 2 scores (one per sentence), got 1" in err
    assert f"{bad}:4: 'payload' is not what its raw reply parses to" in err
    assert f"{bad}:5: not valid JSON" in err and "nothing was imported" in err
    assert len(FeedbackCache(target)) == 0
    assert main(["import", "--cache", str(target), "--from", str(export)]) == 0
    assert len(FeedbackCache(target)) == 3 and FeedbackCache(target).total_spent() == 0  # someone else paid


# -- 6. two jobs over one cache split the work -----------------------------------------------------------------
def _runner(server, path, **config):
    teacher = make_teacher("openai:gpt-4o", base_url=server.openai_url, timeout=30.0)
    return JobRunner(teacher, FeedbackCache(path), "score", JobConfig(**config))


def _items(n):
    return [JobItem(f"i{k}", PROBLEMS[k % 5], ([f"Sentence {k} here."],)) for k in range(n)]


def test_two_jobs_over_one_cache_pay_once_for_shared_items(teacher_server, tmp_path):
    teacher_server.latency_s = 0.02
    a, b = (_runner(teacher_server, tmp_path / "c.sqlite", concurrency=4) for _ in range(2))

    async def go():
        try:
            return await asyncio.gather(a.run(_items(40)), b.run(_items(40)))
        finally:
            await a.teacher.aclose()
            await b.teacher.aclose()

    ra, rb = asyncio.run(go())
    assert ra.done + rb.done == 40 and ra.done > 0 and rb.done > 0
    assert teacher_server.total() == 40 and set(teacher_server.by_fingerprint.values()) == {1}
    assert len(FeedbackCache(tmp_path / "c.sqlite")) == 40
    for report in (ra, rb):
        assert report.cached + report.done + report.claimed_elsewhere == 40
        assert report.stopped == ("pending" if report.claimed_elsewhere else None)


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_claims_of_a_live_job_hold_and_those_of_a_dead_or_late_one_lapse(teacher_server, tmp_path):
    cache = FeedbackCache(tmp_path / "c.sqlite")
    probe = _runner(teacher_server, tmp_path / "c.sqlite")
    keys = [probe.key(probe.request(item)) for item in _items(3)]
    host = socket.gethostname()
    cache.claim(keys[0], f"{host}:{os.getpid()}:other-job", 600)  # alive (this process), not expired
    cache.claim(keys[1], f"{host}:{_dead_pid()}:killed-job", 600)  # its process is gone
    cache.claim(keys[2], "elsewhere:123:remote-job", -1)  # another host's claim, expired
    runner = _runner(teacher_server, tmp_path / "c.sqlite")

    async def go():
        try:
            return await runner.run(_items(3))
        finally:
            await runner.teacher.aclose()

    report = asyncio.run(go())
    assert (report.done, report.claimed_elsewhere, report.stopped) == (2, 1, "pending")
    assert teacher_server.sent("Sentence 0 here") == 0 and teacher_server.sent("Sentence 1 here") == 1
    assert "re-run the same command" in report.message


def test_two_cli_jobs_at_once_send_every_item_once(server_process, tmp_path):
    from test_teacher_cli import _job, _server_stats

    write_items(tmp_path / "items.jsonl", 60, copy_images=False)
    jobs = [_job(server_process, tmp_path, 4) for _ in range(2)]
    codes = [job.wait(timeout=120) for job in jobs]
    assert set(codes) <= {0, 3}, [job.communicate() for job in jobs]
    counts = _server_stats(server_process)["by_fingerprint"]
    assert len(counts) == 60 and set(counts.values()) == {1}
    db = sqlite3.connect(tmp_path / "c.sqlite")
    assert db.execute("SELECT COUNT(*) FROM feedback").fetchone()[0] == 60
    assert db.execute("SELECT COUNT(*) FROM claims").fetchone()[0] == 0  # every claim released
    db.close()


# -- 7. meaningless arguments are refused, naming the flag -----------------------------------------------------
@pytest.mark.parametrize(
    "flag,value",
    [
        ("--timeout", "0"),
        ("--rpm", "0"),
        ("--tpm", "inf"),
        ("--budget", "nan"),
        ("--budget", "-1"),
        ("--budget-total", "0"),
        ("--budget-tokens", "0"),
        ("--max-retries", "-2"),
        ("--concurrency", "0"),
        ("--poll-interval", "-1"),
    ],
)
def test_meaningless_arguments_are_refused_naming_the_flag(teacher_server, tmp_path, capsys, flag, value):
    write_items(tmp_path / "items.jsonl", 2, copy_images=False)
    with pytest.raises(SystemExit) as exit_:
        main(_args(teacher_server, tmp_path, "score", "openai", flag, value))
    assert exit_.value.code == 2
    assert f"argument {flag}: expected" in capsys.readouterr().err
    assert teacher_server.total() == 0 and not (tmp_path / "c.sqlite").exists()


def test_job_config_refuses_meaningless_limits():
    for bad in ({"rpm": 0}, {"budget_usd": float("nan")}, {"max_retries": -2}, {"concurrency": 0}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            JobConfig(**bad)


# -- 8. input errors name the file -----------------------------------------------------------------------------
def test_non_utf8_input_and_a_non_image_are_named_with_file_and_line(teacher_server, tmp_path, capsys):
    path = write_items(tmp_path / "items.jsonl", 2, copy_images=False)
    lines = path.read_bytes().splitlines()
    path.write_bytes(lines[0] + b"\n" + lines[1].replace(b"Sentence 1", b"Sentence \xff1") + b"\n")
    assert main(_args(teacher_server, tmp_path)) == 2
    assert f"{path}:2: not UTF-8 text (byte 0xff" in capsys.readouterr().err
    write_items(tmp_path / "items.jsonl", 3)
    (tmp_path / "images" / f"{PROBLEMS[0].id}.png").write_text("this is not an image")
    assert main(_args(teacher_server, tmp_path)) == 2
    err = capsys.readouterr().err
    assert f"{path}:1: field 'image' names" in err and "is not a PNG, JPEG, GIF or WebP image" in err
    assert teacher_server.total() == 0


def test_a_non_image_fails_only_its_item_in_score_many(teacher_server, tmp_path):
    import dataclasses

    fake = tmp_path / "fake.png"
    fake.write_text("<html>not an image</html>")
    broken = dataclasses.replace(PROBLEMS[0], image=fake)
    teacher = make_teacher("openai:gpt-4o", base_url=teacher_server.openai_url, timeout=30.0)
    results = teacher.score_many([broken, PROBLEMS[1]], [["One."], ["Two."]])
    assert not results[0].ok and f"image {fake} is not a PNG, JPEG, GIF or WebP image" in results[0].failure
    assert results[1].ok and teacher_server.total() == 1


def test_cache_that_is_not_a_database_is_named(tmp_path, capsys):
    path = tmp_path / "notes.txt"
    path.write_text("hello\n" * 100)
    assert main(["stats", "--cache", str(path)]) == 2
    assert f"cache {path} is not a feedback cache" in capsys.readouterr().err
    assert path.read_text() == "hello\n" * 100


def test_budget_stop_reports_the_same_spend_in_message_and_summary(teacher_server, tmp_path):
    prices = PriceTable({"gpt-4o": (200.0, 200.0)})
    teacher = make_teacher("openai:gpt-4o", base_url=teacher_server.openai_url, timeout=30.0)
    runner = JobRunner(
        teacher,
        FeedbackCache(tmp_path / "c.sqlite"),
        "score",
        JobConfig(concurrency=4, budget_usd=1.0),
        prices,
    )

    async def go():
        try:
            return await runner.run(_items(20))
        finally:
            await teacher.aclose()

    report = asyncio.run(go())
    assert report.stopped == "budget"
    assert (
        f"spent ${report.cost:.4f} on {report.sent} requests" in report.message
    )  # after in-flight ones settled
