"""`score_many` / `correct_many` / `judge_many`: the teacher owns concurrency; one failing item never fails
the others; job-wide errors raise. Observed at the local protocol server (requests in flight, per item)."""

import hashlib

import pytest

from align.data import load_sample_scienceqa
from teacher import CachedTeacher, FeedbackCache, make_teacher
from teacher.protocols import TeacherLike
from teacher.records import AuthError

PROBLEMS = load_sample_scienceqa("train")


def _teacher(server, provider="openai", **kw):
    if provider == "openai":
        return make_teacher("openai:gpt-4o", base_url=server.openai_url, timeout=30.0, **kw)
    return make_teacher(
        "anthropic:claude-3-5-haiku-latest", base_url=server.anthropic_url, timeout=30.0, **kw
    )


def _client(server, tmp_path, kind, provider="openai", **kw):
    teacher = _teacher(server, provider, **kw)
    return teacher if kind == "teacher" else CachedTeacher(teacher, FeedbackCache(tmp_path / "c.sqlite"))


def _sent(server, client, task, problem, *args):
    """How many times the server saw this request (by the fingerprint of its system + user text): unlike the
    server's total, blind to a request another test cancelled that the server handles late."""
    request = client.build(task, problem, *args)
    return server.by_fingerprint[hashlib.sha256((request.system + request.user_text).encode()).hexdigest()]


def _sent_per_item(server, client, problems, sentence_lists):
    """How many times the server saw each item's scoring request."""
    return [_sent(server, client, "score", p, s) for p, s in zip(problems, sentence_lists, strict=True)]


@pytest.mark.parametrize("kind", ["teacher", "cached"])
def test_score_many_keeps_the_bound_and_answers_in_order(teacher_server, tmp_path, kind):
    client = _client(teacher_server, tmp_path, kind)
    assert isinstance(client, TeacherLike)
    problems = [PROBLEMS[k % len(PROBLEMS)] for k in range(20)]
    # the server's fake teacher scores 1.0 a sentence naming the correct answer: even items name it
    sentences = [
        [f"Sentence {k} here.", p.choices[p.answer] if k % 2 == 0 else "Nothing."]
        for k, p in enumerate(problems)
    ]
    teacher_server.latency_s = 0.02
    teacher_server.hold(4)  # nothing is answered until 4 requests are in flight at once
    results = client.score_many(problems, sentences, concurrency=4)
    assert teacher_server.max_in_flight == 4  # the bound is reached and never passed
    assert all(fb.ok for fb in results) and len(results) == 20
    assert _sent_per_item(teacher_server, client, problems, sentences) == [1] * 20
    assert [fb.scores for fb in results] == [[0.5, 1.0], [0.5, 0.5]] * 10  # each answer in its item's place


@pytest.mark.parametrize("kind", ["teacher", "cached"])
def test_a_failing_item_comes_back_failed_and_the_others_succeed(teacher_server, tmp_path, kind):
    client = _client(teacher_server, tmp_path, kind, repair=True)
    problems = [PROBLEMS[k % len(PROBLEMS)] for k in range(8)]
    sentences = [[f"Sentence {k} here."] for k in range(8)]
    teacher_server.rule("Sentence 2 here", "400")
    teacher_server.rule("Sentence 4 here", "html")
    teacher_server.rule("Sentence 5 here", "not_json")
    teacher_server.rule("Sentence 6 here", "503")  # transient, and no retries here: fails this call
    teacher_server.rule("Sentence 7 here", "empty_choices")
    results = client.score_many(problems, sentences, concurrency=3)
    assert [fb.ok for fb in results] == [True, True, False, True, False, False, False, False]
    assert (
        "refused this request (400)" in results[2].failure and "invalid_request_error" in results[2].failure
    )
    assert "text/html body, not JSON" in results[4].failure and "502 Bad Gateway" in results[4].failure
    assert "not valid JSON" in results[5].failure and "upstream connect error" in results[5].failure
    assert results[6].failure.startswith("transient error: 503")
    assert "no choices" in results[7].failure
    assert (
        _sent_per_item(teacher_server, client, problems, sentences) == [1] * 8
    )  # no repair of a garbled body
    if kind == "cached":  # provider refusals are cached as failed; the transient failure is not
        teacher_server.rules.clear()
        again = client.score_many(problems, sentences, concurrency=3)
        assert [fb.cached for fb in again] == [True] * 6 + [False, True]
        assert again[6].ok and teacher_server.total() == 9


def test_job_wide_errors_raise_and_cancel_the_rest(teacher_server, tmp_path):
    client = _client(teacher_server, tmp_path, "cached")
    teacher_server.push("401")
    teacher_server.latency_s = 0.05
    with pytest.raises(AuthError, match=r"rejected the API key \(401\)"):
        client.score_many(PROBLEMS[:4] * 5, [["One."]] * 20, concurrency=2)
    assert teacher_server.total() < 20 and len(client.cache) < 20


def test_correct_many_and_judge_many_through_anthropic(teacher_server, tmp_path):
    client = _client(teacher_server, tmp_path, "cached", provider="anthropic")
    problem = PROBLEMS[0]  # correct answer: (A) attract
    fixed = client.correct_many([problem, problem], ["Magnets are things.", "Poles matter."], concurrency=2)
    assert [fb.text for fb in fixed] == [
        "Magnets are things. So the answer is (A) attract.",
        "Poles matter. So the answer is (A) attract.",
    ]
    pairs = [("They attract.", "No."), ("No.", "They attract."), ("No.", "No.")]
    verdicts = client.judge_many([problem] * 3, [a for a, _ in pairs], [b for _, b in pairs])
    assert [fb.verdict for fb in verdicts] == ["A", "B", "tie"]
    sent = [
        _sent(teacher_server, client, "correct", problem, r) for r in ("Magnets are things.", "Poles matter.")
    ]
    sent += [_sent(teacher_server, client, "judge", problem, a, b) for a, b in pairs]
    assert sent == [1] * 5


def test_many_rejects_mismatched_lengths_and_a_bad_bound_and_fails_empty_items_unsent(
    teacher_server, tmp_path
):
    client = _client(teacher_server, tmp_path, "teacher")
    with pytest.raises(ValueError, match="2 problems but 1 argument lists"):
        client.score_many(PROBLEMS[:2], [["One."]])
    with pytest.raises(ValueError, match="1 rationales A but 2 rationales B"):
        client.judge_many(PROBLEMS[:1], ["a"], ["b", "c"])
    with pytest.raises(ValueError, match="concurrency must be an integer of at least 1, got 0"):
        client.correct_many(PROBLEMS[:1], ["a"], concurrency=0)
    results = client.score_many(PROBLEMS[:2], [[], ["One."]])
    assert not results[0].ok and results[0].failure == "no sentences to score" and results[1].ok
    assert teacher_server.total() == 1


def test_cached_teacher_sends_a_repeated_item_once(teacher_server, tmp_path):
    client = _client(teacher_server, tmp_path, "cached")
    teacher_server.latency_s = 0.05
    results = client.score_many([PROBLEMS[0]] * 6, [["Same sentence."]] * 6, concurrency=6)
    assert all(fb.ok for fb in results) and teacher_server.total() == 1
    assert sum(not fb.cached for fb in results) == 1
