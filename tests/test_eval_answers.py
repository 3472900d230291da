"""Answer extraction (adversarial strings included), group accuracy and the A-OKVQA direct-answer score."""

from pathlib import Path

import pytest

from align.data import Problem
from align.eval.answers import (
    accuracy_by_group,
    direct_answer_accuracy,
    direct_answer_score,
    extract_answer,
    scienceqa_groups,
)

CHOICES = ("attract", "repel", "neither")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The answer is (B).", 1),
        ("answer: b", 1),
        ("(C)", 2),
        ("B", 1),
        ("b.", 1),
        ("I think it's option C because magnets repel.", 2),
        ("The magnets will repel each other.", 1),
        ("The answer is not (A), it is (B).", 1),
        ("The answer is not (A).", None),
        ("It could be (A) or (B).", None),
        ("The answer is (D).", None),  # beyond the choices
        ("", None),
        ("   ", None),
        ("They attract or repel.", None),
        ("Solution: Opposite poles attract. The answer is (A).", 0),
        ("The answer is (A). Wait, the answer is (B).", 1),
        ("ANSWER IS C", 2),
        ("Z", None),
        ("The answer is A because a magnet attracts.", 0),
        ("Attractive forces are strong. The answer is (C).", 2),
    ],
)
def test_extract_answer_adversarial(text, expected):
    assert extract_answer(text, CHOICES) == expected


def _p(pid, answer, subject="natural science", grade="grade3", hint="", image=None):
    return Problem(
        pid,
        "q",
        ("x", "y"),
        answer,
        context=hint,
        image=image,
        source="scienceqa",
        meta={"subject": subject, "grade": grade},
    )


def test_groups_follow_the_scienceqa_paper():
    assert scienceqa_groups(_p("1", 0, hint="h", image=Path("i.png"))) == ["NAT", "TXT", "IMG", "G1-6"]
    assert scienceqa_groups(_p("2", 0, subject="language science", grade="grade9")) == ["LAN", "NO", "G7-12"]


def test_accuracy_by_group_hand_computed():
    problems = [_p("1", 0), _p("2", 1, subject="social science", hint="h"), _p("3", 0, grade="grade8")]
    acc = accuracy_by_group(problems, [0, 0, None])
    assert acc["overall"] == {"accuracy": pytest.approx(1 / 3), "n": 3}
    assert acc["NAT"]["accuracy"] == 0.5 and acc["SOC"]["accuracy"] == 0.0 and acc["G7-12"]["n"] == 1
    assert list(acc)[:3] == ["overall", "NAT", "SOC"]


def test_direct_answer_soft_score():
    answers = ["two"] * 2 + ["2"] * 2 + ["three"] * 6
    assert direct_answer_score("2", answers) == 1.0  # "two" normalises to "2": 4 matches
    assert direct_answer_score("Three.", answers) == 1.0
    assert direct_answer_score("the snow", ["snow", "snow", "ice"]) == pytest.approx(2 / 3)
    assert direct_answer_score("sand", answers) == 0.0


def test_direct_answer_accuracy_skips_difficult_questions():
    def aok(pid, answers, difficult=False):
        meta = {"direct_answers": answers, "difficult_direct_answer": difficult}
        return Problem(pid, "q", ("x", "y"), 0, source="aokvqa", meta=meta)

    problems = [
        aok("1", ["dog"] * 3),
        aok("2", ["cat", "cat", "dog"]),
        aok("3", ["dog"] * 10, difficult=True),
    ]
    # 1.0 and 1/3 on the two scored questions; the difficult one is not scored even though it would be 1.0
    assert direct_answer_accuracy(problems, ["dog", "dog", "dog"]) == {
        "accuracy": pytest.approx(2 / 3),
        "n": 2,
    }
