"""The typed record every dataset loader yields and every downstream stage consumes."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

OPTION_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


@dataclass(frozen=True)
class Problem:
    """One multiple-choice question with its gold rationale.

    `answer` is the index of the correct choice. `image` is a path to the image file or None.
    `lecture` and `solution` hold ScienceQA's gold explanation; A-OKVQA's human `rationales` go in
    `rationales` (and `solution` holds them joined). `meta` keeps dataset-specific fields such as
    ScienceQA's `subject`, `grade`, or A-OKVQA's `direct_answers`.
    """

    id: str
    question: str
    choices: tuple[str, ...]
    answer: int
    context: str = ""
    image: Path | None = None
    lecture: str = ""
    solution: str = ""
    rationales: tuple[str, ...] = ()
    split: str = ""
    source: str = ""
    meta: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)

    def __post_init__(self) -> None:
        if not 0 <= self.answer < len(self.choices):
            raise ValueError(
                f"Problem {self.id!r}: answer index {self.answer} is outside the {len(self.choices)} choices"
            )

    @property
    def answer_letter(self) -> str:
        """The correct option as a letter, e.g. "B"."""
        return OPTION_LETTERS[self.answer]

    @property
    def answer_text(self) -> str:
        """The correct option's text."""
        return self.choices[self.answer]

    @property
    def gold_rationale(self) -> str:
        """The gold explanation: ScienceQA's lecture + solution, or A-OKVQA's rationales joined."""
        return " ".join(part for part in (self.lecture, self.solution) if part).strip()
