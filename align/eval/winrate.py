"""Pairwise win rate with an LLM judge: both orders, disagreement as a tie, a bootstrap 95% interval, and the
judge's position bias."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from teacher.protocols import TeacherLike


@dataclass
class PairOutcome:
    """One pair judged in both orders: `first` is the verdict with A shown first, `second` with B first
    (already mapped back to the original labels: "A", "B", "tie" or None when the judgment failed)."""

    problem_id: str
    first: str | None
    second: str | None

    @property
    def outcome(self) -> str | None:
        """ "A", "B", "tie", or None if a judgment failed. A tie when the judge says so or the orders disagree."""
        if self.first is None or self.second is None:
            return None
        if self.first == self.second and self.first in ("A", "B"):
            return self.first
        return "tie"


@dataclass
class WinRate:
    win_rate: float
    ci_low: float
    ci_high: float
    wins: int
    losses: int
    ties: int
    failed: int
    position_bias_rate: float
    first_position_preference: float
    n: int
    pairs: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def bootstrap_interval(
    values: Sequence[float], resamples: int = 2000, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean (seeded, so a report is reproducible)."""
    if not values:
        return float("nan"), float("nan")
    rng = random.Random(seed)
    n = len(values)
    means = sorted(sum(values[rng.randrange(n)] for _ in range(n)) / n for _ in range(resamples))
    lo = means[int((1 - level) / 2 * resamples)]
    hi = means[min(resamples - 1, int((1 + level) / 2 * resamples))]
    return lo, hi


def summarise(pairs: Sequence[PairOutcome], seed: int = 0) -> WinRate:
    """Win rate of A over B with ties as half; the interval by bootstrap over pairs. Position bias: the
    share of pairs whose two orders picked the same position (i.e. disagree on the rationale)."""
    judged = [p for p in pairs if p.outcome is not None]
    values = [1.0 if p.outcome == "A" else 0.0 if p.outcome == "B" else 0.5 for p in judged]
    lo, hi = bootstrap_interval(values, seed=seed)
    decisive = [p for p in judged if p.first in ("A", "B") and p.second in ("A", "B")]
    disagree = [p for p in decisive if p.first != p.second]
    # in the second order the rationale shown first is B: "first position" verdicts are first == "A", second == "B"
    position_votes = [
        v
        for p in judged
        for v in (
            (p.first == "A") if p.first in ("A", "B") else None,
            (p.second == "B") if p.second in ("A", "B") else None,
        )
        if v is not None
    ]
    return WinRate(
        win_rate=sum(values) / len(values) if values else float("nan"),
        ci_low=lo,
        ci_high=hi,
        wins=sum(p.outcome == "A" for p in judged),
        losses=sum(p.outcome == "B" for p in judged),
        ties=sum(p.outcome == "tie" for p in judged),
        failed=len(pairs) - len(judged),
        position_bias_rate=len(disagree) / len(judged) if judged else float("nan"),
        first_position_preference=sum(position_votes) / len(position_votes)
        if position_votes
        else float("nan"),
        n=len(judged),
        pairs=[
            {"id": p.problem_id, "first": p.first, "second": p.second, "outcome": p.outcome} for p in pairs
        ],
    )


def judge_pairs(
    judge: TeacherLike,
    problems: Sequence[Any],
    rationales_a: Sequence[str],
    rationales_b: Sequence[str],
    concurrency: int = 16,
) -> list[PairOutcome]:
    """Every pair judged in both orders (A first, then B first) in one bounded batch of the judge's."""
    n = len(problems)
    verdicts = judge.judge_many(
        list(problems) * 2,
        list(rationales_a) + list(rationales_b),
        list(rationales_b) + list(rationales_a),
        concurrency=concurrency,
    )
    swap = {"A": "B", "B": "A", "tie": "tie"}
    return [
        PairOutcome(
            str(problem.id),
            first.verdict if first.ok else None,
            swap[second.verdict] if second.ok else None,
        )
        for problem, first, second in zip(problems, verdicts[:n], verdicts[n:], strict=True)
    ]


def judge_win_rate(
    judge: TeacherLike,
    problems: Sequence[Any],
    rationales_a: Sequence[str],
    rationales_b: Sequence[str],
    concurrency: int = 16,
    seed: int = 0,
) -> WinRate:
    """Judge every pair in both orders through `judge` (a `Teacher` or `CachedTeacher`: cached judgments make
    a re-run free) and summarise."""
    pairs = judge_pairs(judge, problems, rationales_a, rationales_b, concurrency)
    return summarise(pairs, seed)
