"""Answer extraction and accuracy: ScienceQA by the ScienceQA paper's groups, A-OKVQA multiple choice and
direct answer."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_NEGATED = re.compile(r"\bnot\s*(?:option\s+|choice\s+)?\(?$", re.IGNORECASE)
_EXPLICIT = re.compile(
    r"answer\s*(?:is|:|=)?\s*(?:option\s+|choice\s+)?\(?([A-Za-z])\)?(?![A-Za-z])", re.IGNORECASE
)
_OPTION = re.compile(r"\b(?:option|choice)\s+\(?([A-Za-z])\)?(?![A-Za-z])", re.IGNORECASE)
_PAREN = re.compile(r"\(([A-Z])\)")


def _letter_index(letter: str, n: int) -> int | None:
    index = LETTERS.find(letter.upper())
    return index if 0 <= index < n else None


def _not_negated(text: str, match: re.Match) -> bool:
    before = text[max(0, match.start() - 12) : match.start()]
    inner = text[match.start() : match.start(1)]
    return not _NEGATED.search(before + inner) and "not" not in inner.lower().split()


def extract_answer(text: str, choices: Sequence[str]) -> int | None:
    """The chosen option's index, or None when the text commits to no single valid option.

    In order: a bare letter ("B", "(B)."); the last non-negated "answer is (X)" / "answer: X"; the last
    "option X"; a single distinct parenthesised letter; a single option text quoted verbatim.
    """
    n = len(choices)
    stripped = text.strip()
    if not stripped:
        return None
    bare = re.fullmatch(r"\(?([A-Za-z])\)?[.!]?", stripped)
    if bare:
        return _letter_index(bare.group(1), n)
    for pattern in (_EXPLICIT, _OPTION):
        found = [m for m in pattern.finditer(text) if _not_negated(text, m)]
        found = [i for i in (_letter_index(m.group(1), n) for m in found) if i is not None]
        if found:
            return found[-1]
    letters = {
        i
        for m in _PAREN.finditer(text)
        if _not_negated(text, m)
        for i in [_letter_index(m.group(1), n)]
        if i is not None
    }
    if len(letters) == 1:
        return letters.pop()
    lowered = text.lower()
    named = [
        k for k, c in enumerate(choices) if c and re.search(rf"(?<!\w){re.escape(c.lower())}(?!\w)", lowered)
    ]
    return named[0] if len(named) == 1 else None


def scienceqa_groups(problem: Any) -> list[str]:
    """The ScienceQA paper's groups: subject (NAT/SOC/LAN), context (TXT: has a hint, IMG: has an image,
    NO: neither; TXT and IMG overlap) and grade band (G1-6 / G7-12)."""
    groups = []
    subject = {"natural science": "NAT", "social science": "SOC", "language science": "LAN"}.get(
        problem.meta.get("subject")
    )
    if subject:
        groups.append(subject)
    if problem.context:
        groups.append("TXT")
    if problem.image is not None:
        groups.append("IMG")
    if not problem.context and problem.image is None:
        groups.append("NO")
    grade = problem.meta.get("grade", "")
    if grade.startswith("grade") and grade[5:].isdigit():
        groups.append("G1-6" if int(grade[5:]) <= 6 else "G7-12")
    return groups


GROUP_ORDER = ["NAT", "SOC", "LAN", "TXT", "IMG", "NO", "G1-6", "G7-12"]


def accuracy_by_group(
    problems: Sequence[Any], predictions: Sequence[int | None]
) -> dict[str, dict[str, float]]:
    """Accuracy overall and per group: {"overall": {"accuracy", "n"}, "NAT": {...}, ...}. None counts wrong."""
    hits: dict[str, list[bool]] = defaultdict(list)
    for problem, pred in zip(problems, predictions, strict=True):
        correct = pred == problem.answer
        hits["overall"].append(correct)
        for group in scienceqa_groups(problem) if problem.source == "scienceqa" else []:
            hits[group].append(correct)
    order = ["overall"] + [g for g in GROUP_ORDER if g in hits]
    return {g: {"accuracy": sum(hits[g]) / len(hits[g]), "n": len(hits[g])} for g in order}


_ARTICLES = {"a", "an", "the"}
_NUMBERS = {
    "zero": "0",
    "one": "1",
    "two": "2",
    "three": "3",
    "four": "4",
    "five": "5",
    "six": "6",
    "seven": "7",
    "eight": "8",
    "nine": "9",
    "ten": "10",
}


def normalize_answer(text: str) -> str:
    """VQA-style light normalisation: lower case, punctuation and articles removed, number words as digits."""
    words = re.sub(r"[^\w\s]", " ", text.lower()).split()
    return " ".join(_NUMBERS.get(w, w) for w in words if w not in _ARTICLES)


def direct_answer_score(prediction: str, direct_answers: Sequence[str]) -> float:
    """A-OKVQA direct-answer accuracy of one prediction: min(1, #annotators who gave it / 3)."""
    pred = normalize_answer(prediction)
    matches = sum(normalize_answer(a) == pred for a in direct_answers)
    return min(1.0, matches / 3.0)


def direct_answer_accuracy(problems: Sequence[Any], predictions: Sequence[str]) -> dict[str, float]:
    """Mean A-OKVQA direct-answer score; like the official evaluation, questions marked
    `difficult_direct_answer` are left out of the direct-answer setting. Returns {"accuracy", "n"}."""
    scores = [
        direct_answer_score(pred, p.meta.get("direct_answers", []))
        for p, pred in zip(problems, predictions, strict=True)
        if not p.meta.get("difficult_direct_answer", False)
    ]
    return {"accuracy": sum(scores) / len(scores) if scores else float("nan"), "n": len(scores)}
