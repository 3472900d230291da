"""Batch mode through the SDKs' OpenAI Batch API and Anthropic Message Batches calls, against the local server."""

import asyncio

import pytest

from align.data import load_sample_scienceqa
from teacher import FeedbackCache, make_teacher
from teacher.batch import BatchJob
from teacher.cache import BatchEntry
from teacher.cli import main
from teacher.jobs import JobConfig, JobItem, JobRunner
from teacher.pricing import PriceTable
from teacher.records import TeacherError

PROBLEMS = load_sample_scienceqa("train")
PROVIDERS = {
    "openai": ("openai:gpt-4o", "openai_url"),
    "anthropic": ("anthropic:claude-3-5-haiku-latest", "anthropic_url"),
}


def _model(provider: str) -> str:
    return PROVIDERS[provider][0].split(":", 1)[1]


def _items(n: int) -> list[JobItem]:
    return [
        JobItem(
            f"item{k}", PROBLEMS[k % len(PROBLEMS)], ([f"Sentence {k} here.", "Opposite poles attract."],)
        )
        for k in range(n)
    ]


def _go(job, items):
    """Run a job and close its SDK client on the same event loop."""
    teacher = getattr(job, "runner", job).teacher

    async def go():
        try:
            return await job.run(items)
        finally:
            await teacher.aclose()

    return asyncio.run(go())


def _job(server, tmp_path, provider, wait=True, prices=None, **config) -> BatchJob:
    spec, url = PROVIDERS[provider]
    teacher = make_teacher(spec, base_url=getattr(server, url), timeout=30.0)
    runner = JobRunner(teacher, FeedbackCache(tmp_path / "c.sqlite"), "score", JobConfig(**config), prices)
    return BatchJob(runner, poll_s=0.01, wait=wait)


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_batch_submits_once_polls_and_collects_at_half_price(teacher_server, tmp_path, provider):
    job = _job(teacher_server, tmp_path, provider)
    report = _go(job, _items(6))
    assert (report.done, report.failed, report.stopped) == (6, 0, None)
    assert teacher_server.requests[f"{provider}.batches.create"] == 1
    assert teacher_server.requests[f"{provider}.batch"] == 6
    assert (
        "openai.chat" not in teacher_server.requests and "anthropic.messages" not in teacher_server.requests
    )
    cache = job.runner.cache
    fb = cache.get(job.runner.key(job.runner.request(_items(6)[0])))
    assert fb.ok and fb.scores == [0.5, 1.0] and fb.input_tokens > 0
    live = PriceTable().cost(job.runner.teacher.model, fb.input_tokens, fb.output_tokens)
    assert fb.cost == pytest.approx(live / 2)
    assert (
        cache.open_batches(
            "openai" if provider == "openai" else "anthropic", job.runner.teacher.model, "score"
        )
        == []
    )


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_restarted_job_collects_its_open_batches_instead_of_paying_again(teacher_server, tmp_path, provider):
    teacher_server.batches.polls_before_done = 10**6  # the provider is slow today
    report = _go(_job(teacher_server, tmp_path, provider, wait=False), _items(5))
    assert report.stopped == "pending" and "re-run the same command" in report.message and report.sent == 0
    report = _go(_job(teacher_server, tmp_path, provider, wait=False), _items(5))
    assert report.stopped == "pending" and teacher_server.requests[f"{provider}.batches.create"] == 1
    teacher_server.batches.polls_before_done = 0
    report = _go(_job(teacher_server, tmp_path, provider), _items(7))  # two new items
    assert (report.done, report.stopped) == (7, None)
    assert teacher_server.requests[f"{provider}.batches.create"] == 2
    assert (
        teacher_server.requests[f"{provider}.batch"] == 7 and max(teacher_server.by_fingerprint.values()) == 1
    )
    report = _go(_job(teacher_server, tmp_path, provider), _items(7))
    assert report.cached == 7 and teacher_server.requests[f"{provider}.batches.create"] == 2


def test_batch_failures_are_cached_with_their_reasons(teacher_server, tmp_path):
    teacher_server.rule("Sentence 1 here", "wrong_count")
    teacher_server.rule("Sentence 2 here", "500")
    report = _go(_job(teacher_server, tmp_path, "openai"), _items(4))
    assert (report.done, report.failed) == (2, 2)
    reasons = " ".join(r for r, _ in FeedbackCache(tmp_path / "c.sqlite").stats()["top_failures"])
    assert "expected 2 scores" in reasons and "batch request failed (500)" in reasons


def test_batch_budget_submits_only_what_fits(teacher_server, tmp_path):
    prices = PriceTable({"gpt-4o": (2000.0, 2000.0)})
    report = _go(_job(teacher_server, tmp_path, "openai", prices=prices, budget_usd=5.0), _items(10))
    assert report.stopped == "budget" and report.message.startswith("budget of $5.00 reached")
    assert 0 < teacher_server.requests["openai.batch"] < 10


def test_cli_batch_mode_and_its_refusal_for_a_local_teacher(teacher_server, tmp_path, capsys):
    from test_teacher_cli import write_items

    write_items(tmp_path / "items.jsonl", 3)
    base = ["score", "--input", str(tmp_path / "items.jsonl"), "--cache", str(tmp_path / "c.sqlite")]
    args = [*base, "--teacher", "openai:gpt-4o", "--base-url", teacher_server.openai_url, "--no-progress"]
    assert main([*args, "--batch", "--poll-interval", "0.01"]) == 0
    assert teacher_server.requests["openai.batch"] == 3
    assert main([*base, "--teacher", "reference:lexical", "--batch", "--no-progress"]) == 2
    assert "--batch needs an openai: or anthropic: teacher" in capsys.readouterr().err


# -- issue 14: a batch accepted by the provider but never recorded locally is not paid for twice ----------
@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_a_batch_accepted_but_never_heard_of_is_found_again_not_paid_twice(
    teacher_server, tmp_path, provider
):
    teacher_server.batches.after_accept = "drop"  # the provider takes the batch; the client never hears back
    with pytest.raises(TeacherError, match="re-run to check whether the provider accepted it"):
        _go(_job(teacher_server, tmp_path, provider), _items(40))
    assert teacher_server.requests[f"{provider}.batches.create"] == 1
    cache = FeedbackCache(tmp_path / "c.sqlite")
    assert len(cache) == 0 and len(cache.intents(provider, _model(provider), "score")) == 1
    report = _go(_job(teacher_server, tmp_path, provider), _items(40))  # the resume
    assert (report.done, report.failed, report.stopped) == (40, 0, None)
    assert teacher_server.requests[f"{provider}.batches.create"] == 1  # found by its tag, not submitted again
    assert teacher_server.requests[f"{provider}.batch"] == 40 and set(
        teacher_server.by_fingerprint.values()
    ) == {1}
    assert len(cache) == 40 and cache.intents(provider, _model(provider), "score") == []


def test_an_intent_the_provider_never_saw_is_dropped_and_submitted(teacher_server, tmp_path):
    cache = FeedbackCache(tmp_path / "c.sqlite")
    job = _job(teacher_server, tmp_path, "openai")
    entries = [BatchEntry(f"{k:064x}", f"{k:064x}", f"i{k}", "score-v1", 2) for k in range(3)]
    cache.add_batch_intent("lost-tag", "openai", "gpt-4o", "score", entries, "someone")
    report = _go(job, _items(3))
    assert report.done == 3 and teacher_server.requests["openai.batches.create"] == 1
    assert (
        cache.intents("openai", "gpt-4o", "score") == []
        and cache.batch_status("intent:lost-tag") == "abandoned"
    )


def test_cli_killed_right_after_the_provider_accepted_its_batch_resumes_without_paying_twice(
    teacher_server, tmp_path
):
    import os
    import subprocess
    import sys
    from pathlib import Path

    from test_teacher_cli import write_items

    write_items(tmp_path / "items.jsonl", 40, copy_images=False)
    root = Path(__file__).resolve().parent.parent
    args = [
        "score",
        "--input",
        str(tmp_path / "items.jsonl"),
        "--cache",
        str(tmp_path / "c.sqlite"),
        "--teacher",
        "openai:gpt-4o",
        "--base-url",
        teacher_server.openai_url,
        "--no-progress",
        "--batch",
        "--poll-interval",
        "0.01",
    ]
    env = {**os.environ, "PYTHONPATH": str(root)}
    job = subprocess.Popen(
        [sys.executable, "-m", "teacher.cli", *args], env=env, cwd=root, stderr=subprocess.PIPE
    )
    teacher_server.batches.after_accept = ("kill", job.pid)  # SIGKILL the job as the provider accepts
    job.wait(timeout=120)
    assert job.returncode == -9
    assert (
        teacher_server.requests["openai.batches.create"] == 1
        and teacher_server.requests["openai.batch"] == 40
    )
    assert main(args) == 0  # the resume finds the batch by its tag and collects it
    assert (
        teacher_server.requests["openai.batches.create"] == 1
        and teacher_server.requests["openai.batch"] == 40
    )
    assert len(FeedbackCache(tmp_path / "c.sqlite")) == 40
