"""Caching jobs: rate limits, backoff, budget, and the runner against the local server through the SDKs."""

import asyncio
import time

import pytest

from align.data import load_sample_scienceqa
from teacher import FeedbackCache, make_teacher
from teacher.jobs import JobConfig, JobItem, JobReport, JobRunner
from teacher.jobs.progress import JobProgress
from teacher.limits import Budget, RateLimiter, RetryPolicy, TokenBucket
from teacher.pricing import PriceTable
from teacher.records import BudgetExceededError, TeacherError, TransientError

PROBLEMS = load_sample_scienceqa("train")


def _items(n: int) -> list[JobItem]:
    return [
        JobItem(f"item{k}", PROBLEMS[k % len(PROBLEMS)], ([f"Sentence {k} about it.", "Another one."],))
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


def _runner(server, tmp_path, model="gpt-4o", repair=True, prices=None, on_progress=None, **config):
    teacher = make_teacher(f"openai:{model}", base_url=server.openai_url, timeout=30.0, repair=repair)
    config.setdefault("backoff_base_s", 0.01)
    cache = FeedbackCache(tmp_path / "c.sqlite")
    return JobRunner(teacher, cache, "score", JobConfig(**config), prices, on_progress=on_progress)


# -- limits -------------------------------------------------------------------------------------------------
def test_token_bucket_refills_at_its_rate_with_short_bursts():
    now = [0.0]
    bucket = TokenBucket(per_minute=120, burst_s=1.0, clock=lambda: now[0])  # 2 per second, bursts of 2
    assert bucket.capacity == 2.0 and bucket.wait_time(2) == 0.0
    bucket.level = 0.0
    assert bucket.wait_time(1) == pytest.approx(0.5)
    now[0] = 0.25
    assert bucket.wait_time(1) == pytest.approx(0.25)
    assert bucket.wait_time(1000) == pytest.approx(0.75)  # larger than the bucket: waits for a full one
    assert TokenBucket(per_minute=3).capacity == 1.0  # at least one request


class FakeTime:
    """A clock that moves only when the code under test sleeps: waits are asserted exactly, not timed."""

    def __init__(self):
        self.now, self.slept = 0.0, []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_large_requests_leave_a_debt_so_the_long_run_rate_is_exact():
    fake = FakeTime()
    bucket = TokenBucket(
        per_minute=6000, burst_s=0.1, clock=fake.clock, sleep=fake.sleep
    )  # 100/s, bursts of 10

    async def go():
        await bucket.acquire(10)  # the full burst, at once
        await bucket.acquire(3)  # waits 0.03 s for 3 units
        await bucket.acquire(30)  # waits for a full bucket (0.1 s), then owes 20
        await bucket.acquire(1)  # waits out the debt and one more unit: 0.21 s

    asyncio.run(go())
    assert fake.now == pytest.approx(0.03 + 0.1 + 0.21)


def test_rate_limiter_waits_for_tokens():
    fake = FakeTime()
    limiter = RateLimiter(
        rpm=600, tpm=6000, clock=fake.clock, sleep=fake.sleep
    )  # 10 requests, 100 tokens a second
    limiter.tokens.level = 0.0
    asyncio.run(limiter.acquire(20))  # 20 tokens at 100/s
    assert fake.now == pytest.approx(0.2)


def test_backoff_doubles_with_jitter_and_never_undercuts_retry_after():
    policy = RetryPolicy(max_retries=5, base_s=0.5, cap_s=4.0, seed=0)
    for attempt in range(6):
        assert 0.0 <= policy.delay(attempt) <= min(4.0, 0.5 * 2**attempt)
    assert all(policy.delay(0, retry_after=7.0) == 7.0 for _ in range(20))


def test_retry_policy_retries_transient_errors_then_gives_up():
    waits, calls = [], []

    async def fake_sleep(s):
        waits.append(s)

    async def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise TransientError("429", retry_after=2.5)
        return "ok"

    policy = RetryPolicy(max_retries=3, base_s=0.01, seed=1)
    assert asyncio.run(policy.call(flaky, sleep=fake_sleep)) == "ok"
    assert len(calls) == 3 and waits == [2.5, 2.5]

    async def always():
        raise TransientError("503")

    with pytest.raises(TransientError):
        asyncio.run(RetryPolicy(max_retries=2, base_s=0.01).call(always, sleep=fake_sleep))


def test_budget_reserves_before_spending():
    budget = Budget(1.0)
    budget.reserve(0.6)
    with pytest.raises(BudgetExceededError, match=r"budget of \$1.00 reached: spent \$0.0000 on 0 requests"):
        budget.reserve(0.5)
    budget.settle(0.6, 0.2)
    budget.reserve(0.5)
    assert budget.spent == 0.2 and budget.reserved == 0.5


# -- the runner against the local server --------------------------------------------------------------------
def test_job_retries_transient_errors_and_caches_every_item(teacher_server, tmp_path):
    teacher_server.push("429", "503", "500", "429")
    runner = _runner(teacher_server, tmp_path, concurrency=8)
    report = _go(runner, _items(30))
    assert (report.done, report.failed, report.cached, report.retries) == (30, 0, 0, 4)
    assert report.complete and report.cost > 0 and report.input_tokens > 0
    assert teacher_server.total() == 34 and len(runner.cache) == 30
    again = _runner(teacher_server, tmp_path)
    report = _go(again, _items(30))
    assert (report.cached, report.sent) == (30, 0) and teacher_server.total() == 34  # nothing paid twice
    assert len(teacher_server.by_fingerprint) == 30  # each item sent once, plus the 4 retries


def test_retry_after_is_honoured(teacher_server, tmp_path):
    teacher_server.push("429", "429")  # the server says Retry-After: 0.05
    runner = _runner(teacher_server, tmp_path, concurrency=1, backoff_base_s=0.0001)
    report = _go(runner, _items(1))
    assert report.done == 1 and report.retries == 2 and report.elapsed_s >= 0.1


def test_persistent_transient_error_is_recorded_with_reason_and_retried_only_on_request(
    teacher_server, tmp_path
):
    teacher_server.rule("Sentence 0 about", "503")
    report = _go(_runner(teacher_server, tmp_path, max_retries=2), _items(3))
    assert (report.done, report.failed) == (2, 1)
    cache = FeedbackCache(tmp_path / "c.sqlite")
    assert cache.stats()["top_failures"][0][0].startswith("transient error after 2 retries: 503")
    before = teacher_server.total()
    report = _go(_runner(teacher_server, tmp_path), _items(3))
    assert report.cached == 3 and teacher_server.total() == before
    teacher_server.rules.clear()
    report = _go(_runner(teacher_server, tmp_path, retry_failed=True), _items(3))
    assert (report.cached, report.done) == (2, 1) and teacher_server.total() == before + 1


def test_rejected_replies_are_cached_as_failures_with_reasons(teacher_server, tmp_path):
    teacher_server.rule("Sentence 1 about", "out_of_range")
    teacher_server.rule("Sentence 2 about", "wrong_count")
    report = _go(_runner(teacher_server, tmp_path, repair=False), _items(4))
    assert (report.done, report.failed) == (2, 2)
    reasons = " ".join(r for r, _ in FeedbackCache(tmp_path / "c.sqlite").stats()["top_failures"])
    assert "outside [0.0, 1.0]" in reasons and "expected 2 scores" in reasons


def test_budget_stops_launching_and_in_flight_requests_finish(teacher_server, tmp_path):
    prices = PriceTable({"gpt-4o": (200.0, 200.0)})  # about $0.27 a request (its max_tokens counted)
    runner = _runner(teacher_server, tmp_path, prices=prices, concurrency=4, budget_usd=1.0)
    report = _go(runner, _items(20))
    assert report.stopped == "budget" and not report.complete
    assert (
        report.message.startswith("budget of $1.00 reached: spent $") and "raise --budget" in report.message
    )
    assert 0 < report.sent < 20 and report.cost <= 1.0
    assert len(runner.cache) == report.sent == teacher_server.total()  # what was paid for is kept


def test_dollar_budget_needs_a_price_and_token_budget_works_without(teacher_server, tmp_path):
    with pytest.raises(TeacherError, match="no price for model 'local-model'.*--budget-tokens"):
        _go(_runner(teacher_server, tmp_path, model="local-model", budget_usd=1.0), _items(2))
    runner = _runner(teacher_server, tmp_path, model="local-model", budget_tokens=2200, concurrency=1)
    report = _go(runner, _items(10))
    assert not report.cost_known and report.stopped == "budget" and "--budget-tokens" in report.message
    assert 0 < report.sent < 10


def test_requests_run_concurrently_up_to_the_bound(teacher_server, tmp_path):
    """Concurrency where it is observable: the server's count of requests in flight (timings belong in the
    benchmark). The server holds replies until 16 requests have arrived, so a client that really keeps 16
    in flight shows 16 however loaded the machine is, and one that passed the bound would show more."""
    teacher_server.latency_s = 0.02
    teacher_server.hold(16)
    report = _go(_runner(teacher_server, tmp_path, concurrency=16), _items(48))
    assert report.done == 48 and teacher_server.max_in_flight == 16
    teacher_server.reset()
    teacher_server.latency_s = 0.02
    report = _go(_runner(teacher_server, tmp_path / "b", concurrency=3), _items(12))
    assert report.done == 12 and teacher_server.max_in_flight <= 3


def test_stop_lets_in_flight_requests_finish_and_launches_nothing_more(teacher_server, tmp_path):
    teacher_server.latency_s = 0.05
    runners = []

    def progress(report):
        if report.sent >= 3:
            runners[0].stop()

    runner = _runner(teacher_server, tmp_path, concurrency=4, on_progress=progress)
    runners.append(runner)
    report = _go(runner, _items(40))
    assert report.stopped == "interrupted" and 3 <= report.sent <= 3 + 4
    assert len(runner.cache) == report.sent == teacher_server.total()  # nothing half-written or lost


def test_abandon_cancels_in_flight_requests_and_writes_nothing_of_theirs(teacher_server, tmp_path):
    teacher_server.latency_s = 0.3
    runner = _runner(teacher_server, tmp_path, concurrency=4)

    async def go():
        task = asyncio.create_task(runner.run(_items(8)))
        await asyncio.sleep(0.1)
        runner.abandon()
        report = await task
        await runner.teacher.aclose()
        return report

    report = asyncio.run(go())
    assert report.stopped == "interrupted" and report.sent == 0 and len(runner.cache) == 0
    time.sleep(0.35)  # let the server finish the abandoned requests before the next test resets it


def test_unknown_model_stops_the_job_with_the_providers_reason(teacher_server, tmp_path):
    report = _go(_runner(teacher_server, tmp_path, model="no-such-model"), _items(5))
    assert report.stopped == "error" and "no-such-model" in report.message and len(report.message) > 20


def test_progress_bar_shows_done_failed_cached_and_cost(capsys):
    bar = JobProgress(10, mode="bar")
    bar.update(JobReport(total=10, cached=4, done=2, failed=1, cost=0.0123))
    bar.close()
    err = capsys.readouterr().err
    assert "3/6" in err and "done=2" in err and "failed=1" in err and "cached=4" in err and "$0.0123" in err
