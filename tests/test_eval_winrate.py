"""The judge protocol through the real SDK: both orders, disagreement is a tie, a re-run sends nothing."""

import pytest

from align.data import load_sample_scienceqa
from align.eval.winrate import PairOutcome, bootstrap_interval, judge_win_rate, summarise
from teacher import CachedTeacher, FeedbackCache, make_teacher

PROBLEMS = load_sample_scienceqa("train")[:6]


def test_summary_hand_computed():
    pairs = [
        PairOutcome("1", "A", "A"),
        PairOutcome("2", "B", "B"),
        PairOutcome("3", "A", "B"),
        PairOutcome("4", "tie", "A"),
        PairOutcome("5", None, "A"),
    ]
    s = summarise(pairs)
    # pair 3: the two orders disagree -> tie; pair 4: the judge said tie once -> tie; pair 5 failed
    assert (s.wins, s.losses, s.ties, s.failed, s.n) == (1, 1, 2, 1, 4)
    assert s.win_rate == pytest.approx((1 + 0.5 * 2) / 4)
    assert s.position_bias_rate == pytest.approx(1 / 4)
    assert s.ci_low <= s.win_rate <= s.ci_high


def test_bootstrap_interval_is_seeded_and_sane():
    values = [1.0] * 70 + [0.0] * 30
    lo, hi = bootstrap_interval(values, seed=1)
    assert (lo, hi) == bootstrap_interval(values, seed=1)
    assert 0.58 < lo < 0.7 < hi < 0.8


def test_judge_both_orders_tie_on_disagreement_and_cache(teacher_server, tmp_path):
    judge = CachedTeacher(
        make_teacher("openai:gpt-4o", base_url=teacher_server.openai_url),
        FeedbackCache(tmp_path / "judge.sqlite"),
    )
    good = [f"Solution: the answer is {p.answer_text}." for p in PROBLEMS]
    bad = ["Solution: I do not know." for _ in PROBLEMS]
    result = judge_win_rate(judge, PROBLEMS, good, bad)
    assert teacher_server.total() == 2 * len(PROBLEMS)  # both orders of every pair
    assert result.win_rate == 1.0 and result.wins == len(PROBLEMS) and result.position_bias_rate == 0.0

    # a judge that always picks the first position: every pair's orders disagree -> all ties
    teacher_server.responder = lambda task, block: {"verdict": "A", "reason": "first"}
    biased = CachedTeacher(
        make_teacher("anthropic:claude-3-5-haiku-latest", base_url=teacher_server.anthropic_url),
        FeedbackCache(tmp_path / "judge.sqlite"),
    )
    result = judge_win_rate(biased, PROBLEMS, good, bad)
    assert result.ties == len(PROBLEMS) and result.win_rate == 0.5
    assert result.position_bias_rate == 1.0 and result.first_position_preference == 1.0

    before = teacher_server.total()
    again = judge_win_rate(biased, PROBLEMS, good, bad)
    assert teacher_server.total() == before and again.win_rate == 0.5  # all judgments came from the cache
