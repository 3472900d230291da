"""Teacher clients through the official SDKs against the local protocol server, faults included."""

import json
import multiprocessing

import pytest

from align.data import load_sample_scienceqa
from teacher import CachedTeacher, FeedbackCache, make_teacher
from teacher.client import make_backend
from teacher.parsing import ReplyError, extract_json_object, validate_scores
from teacher.records import BadSpecError, MissingAPIKeyError, TransientError, UnknownModelError

PROBLEM = load_sample_scienceqa("train")[0]  # magnets, with an image
SENTENCES = ["Opposite poles attract each other.", "The sky is blue.", "So the magnets attract."]


def _teacher(server, provider, **kw):
    if provider == "openai":
        return make_teacher("openai:gpt-4o", base_url=server.openai_url, timeout=30.0, **kw)
    return make_teacher(
        "anthropic:claude-3-5-haiku-latest", base_url=server.anthropic_url, timeout=30.0, **kw
    )


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_three_tasks_through_real_sdk(teacher_server, provider):
    t = _teacher(teacher_server, provider)
    fb = t.score_sentences(PROBLEM, SENTENCES)
    assert fb.ok and fb.scores == [1.0, 0.5, 1.0] and fb.prompt_version == "score-v1" and fb.input_tokens > 0
    fb = t.correct(PROBLEM, "Magnets are things.")
    assert fb.ok and fb.text.endswith("So the answer is (A) attract.")
    fb = t.judge(PROBLEM, "They attract.", "They do nothing.")
    assert fb.ok and fb.verdict == "A"
    assert teacher_server.total() == 3


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_image_is_sent(teacher_server, provider):
    seen = {}

    def responder(task, block):
        seen["task"] = task
        return {"scores": [0.5] * len(block["sentences"])}

    teacher_server.responder = responder
    t = _teacher(teacher_server, provider)
    request = t.build("score", PROBLEM, SENTENCES)
    assert len(request.images) == 1 and request.images[0].startswith(b"\x89PNG")
    body = t.backend.body(request)
    dumped = json.dumps(body)
    assert "base64" in dumped and ("image_url" in dumped or '"type": "image"' in dumped)
    assert t.score_sentences(PROBLEM, SENTENCES).ok and seen["task"] == "score"


@pytest.mark.parametrize("fault", ["wrong_count", "out_of_range", "truncated"])
def test_bad_replies_become_failures_with_reasons(teacher_server, fault):
    t = _teacher(teacher_server, "openai", repair=False)
    teacher_server.push(fault)
    fb = t.score_sentences(PROBLEM, SENTENCES)
    assert not fb.ok and fb.scores is None
    expected = {
        "wrong_count": "expected 3 scores",
        "out_of_range": "outside [0.0, 1.0]",
        "truncated": "truncated",
    }
    assert expected[fault] in fb.failure


def test_json_in_prose_is_parsed(teacher_server):
    t = _teacher(teacher_server, "anthropic", repair=False)
    teacher_server.push("prose")
    fb = t.score_sentences(PROBLEM, SENTENCES)
    assert fb.ok and fb.scores == [1.0, 0.5, 1.0]


def test_repair_retry_once(teacher_server):
    t = _teacher(teacher_server, "openai", repair=True)
    teacher_server.push("wrong_count")
    fb = t.score_sentences(PROBLEM, SENTENCES)
    assert fb.ok and teacher_server.total() == 2
    teacher_server.push("wrong_count", "out_of_range")
    fb = t.score_sentences(PROBLEM, SENTENCES)
    assert not fb.ok and "after one repair retry" in fb.failure and "expected 3 scores" in fb.failure


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
@pytest.mark.parametrize("fault", ["429", "500", "503"])
def test_transient_errors_are_typed(teacher_server, provider, fault):
    t = _teacher(teacher_server, provider)
    teacher_server.push(fault)
    with pytest.raises(TransientError) as err:
        t.score_sentences(PROBLEM, SENTENCES)
    if fault == "429":
        assert err.value.retry_after == pytest.approx(0.05)


def test_slow_reply_times_out_as_transient(teacher_server):
    teacher_server.slow_s = 1.5
    t = make_teacher("openai:gpt-4o", base_url=teacher_server.openai_url, timeout=0.3)
    teacher_server.push("slow")
    with pytest.raises(TransientError, match="Timeout"):
        t.score_sentences(PROBLEM, SENTENCES)


def test_errors_a_user_understands(teacher_server, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY")
    with pytest.raises(MissingAPIKeyError, match="OPENAI_API_KEY is not set"):
        make_teacher("openai:gpt-4o")
    with pytest.raises(BadSpecError, match="unknown teacher backend 'gemini'"):
        make_teacher("gemini:pro")
    with pytest.raises(BadSpecError, match="names no model"):
        make_teacher("openai")
    with pytest.raises(BadSpecError, match="URL#MODEL"):
        make_teacher("openai-compatible:http://localhost:8000/v1")
    with pytest.raises(BadSpecError, match="'embedding' or 'lexical'"):
        make_teacher("reference:cosine")
    t = make_teacher(f"openai-compatible:{teacher_server.openai_url}#no-such-model")
    with pytest.raises(UnknownModelError, match="no-such-model"):
        t.score_sentences(PROBLEM, SENTENCES)


def test_openai_compatible_server_without_key(teacher_server, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY")
    t = make_teacher(f"openai-compatible:{teacher_server.openai_url}#Qwen2-VL-7B")
    assert t.score_sentences(PROBLEM, SENTENCES).ok


def test_keys_never_reach_reprs_or_cache(teacher_server, tmp_path):
    t = _teacher(teacher_server, "openai")
    cache = FeedbackCache(tmp_path / "c.sqlite")
    CachedTeacher(t, cache).score_sentences(PROBLEM, SENTENCES)
    assert "sk-test-secret-key-123" in teacher_server.seen_auth[0]  # the key was sent to the server...
    cache.close()
    blob = (tmp_path / "c.sqlite").read_bytes()
    for path in tmp_path.iterdir():
        blob += path.read_bytes()
    assert b"sk-test-secret" not in blob  # ...and stored nowhere
    assert "sk-test" not in repr(t) and "sk-test" not in repr(t.backend)


def test_cache_hit_sends_nothing(teacher_server, tmp_path):
    cached = CachedTeacher(_teacher(teacher_server, "openai"), FeedbackCache(tmp_path / "c.sqlite"))
    first = cached.score_sentences(PROBLEM, SENTENCES)
    second = cached.score_sentences(PROBLEM, SENTENCES)
    assert first.ok and not first.cached and second.cached and second.scores == first.scores
    assert teacher_server.total() == 1 and first.cost is not None and first.cost > 0
    other = CachedTeacher(_teacher(teacher_server, "anthropic"), FeedbackCache(tmp_path / "c.sqlite"))
    assert not other.score_sentences(PROBLEM, SENTENCES).cached  # another model: another key


def test_failures_are_cached_with_reason_and_retried_on_request(teacher_server, tmp_path):
    teacher = _teacher(teacher_server, "openai", repair=False)
    cache = FeedbackCache(tmp_path / "c.sqlite")
    teacher_server.push("out_of_range")
    assert not CachedTeacher(teacher, cache).score_sentences(PROBLEM, SENTENCES).ok
    again = CachedTeacher(teacher, cache).score_sentences(PROBLEM, SENTENCES)
    assert again.cached and not again.ok and "outside" in again.failure
    retried = CachedTeacher(teacher, cache, retry_failed=True).score_sentences(PROBLEM, SENTENCES)
    assert retried.ok and teacher_server.total() == 2
    assert cache.stats()["tasks"]["score"]["ok"] == 1


def test_cache_export_import_round_trip(teacher_server, tmp_path):
    a = FeedbackCache(tmp_path / "a.sqlite")
    cached = CachedTeacher(_teacher(teacher_server, "openai"), a)
    cached.score_sentences(PROBLEM, SENTENCES)
    cached.judge(PROBLEM, "x attract", "y")
    assert a.export_jsonl(tmp_path / "share.jsonl") == 2
    b = FeedbackCache(tmp_path / "b.sqlite")
    assert b.import_jsonl(tmp_path / "share.jsonl") == 2 and b.import_jsonl(tmp_path / "share.jsonl") == 0
    hit = CachedTeacher(_teacher(teacher_server, "openai"), b).score_sentences(PROBLEM, SENTENCES)
    assert hit.cached and teacher_server.total() == 2


def _writer(path, worker, n):
    from teacher.records import Feedback, TeacherRequest

    cache = FeedbackCache(path)
    for k in range(n):
        req = TeacherRequest("score", "v", "s", f"{worker}-{k}", item_id=f"{worker}-{k}")
        cache.put(f"{worker}-{k}", req, "b", "m", Feedback("score", True, scores=[0.5]))


def test_cache_is_safe_with_several_writer_processes(tmp_path):
    path = tmp_path / "shared.sqlite"
    FeedbackCache(path).close()
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(path, w, 200)) for w in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    assert len(FeedbackCache(path)) == 600


def test_parsing_helpers():
    assert extract_json_object('blah {"scores": [0.5]} trailing') == {"scores": [0.5]}
    with pytest.raises(ReplyError, match="no JSON object"):
        extract_json_object("I cannot help with that.")
    assert validate_scores([0.31, 1, 0], 3) == [0.3, 1.0, 0.0]
    with pytest.raises(ReplyError, match="not a number"):
        validate_scores([0.5, "high"], 2)
    with pytest.raises(ReplyError, match="not a number"):
        validate_scores([True], 1)


def test_reference_teacher_lexical_is_offline_and_sensible():
    t = make_teacher("reference:lexical")
    gold_sentences = [PROBLEM.solution.split(". ")[1] + "."]  # "Opposite poles attract."
    fb = t.score_sentences(
        PROBLEM,
        gold_sentences + ["Bananas grow on trees in warm places.", gold_sentences[0], "The answer is (B)."],
    )
    assert (
        fb.ok and fb.scores[0] == 1.0 and fb.scores[1] == 0.0 and fb.scores[2] == 0.0 and fb.scores[3] == 0.0
    )
    assert t.judge(PROBLEM, PROBLEM.solution, "Bananas grow on trees.").verdict == "A"
    assert t.judge(PROBLEM, PROBLEM.solution, PROBLEM.solution).verdict == "tie"
    fixed = t.correct(PROBLEM, "Opposite poles attract. Bananas grow on trees. Bananas grow on trees")
    assert fixed.ok and "Bananas" not in fixed.text and fixed.text.startswith("Opposite poles attract.")


def test_make_backend_reference_rejects_unknown_similarity():
    with pytest.raises(ValueError, match="embedding' or 'lexical"):
        make_backend("reference:fuzzy")


@pytest.mark.slow
def test_reference_teacher_embedding_model_loads_offline():
    t = make_teacher("reference")
    fb = t.score_sentences(
        PROBLEM, ["Opposite magnetic poles pull toward each other.", "I like pizza a lot."]
    )
    assert fb.ok and fb.scores[0] > fb.scores[1]
