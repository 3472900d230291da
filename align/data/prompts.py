"""Prompt builders in the Multimodal-CoT formats, and a chat form for instruction-tuned models.

Formats (input -> target), after MM-CoT (Zhang et al., 2023):
- `QCM-E`:  question, context, options -> `Solution: {lecture} {solution}` (the rationale stage)
- `QCM-A`:  question, context, options -> `The answer is (X).`
- `QCM-EA`: question, context, options -> `Solution: ... The answer is (X).`
- `QCMG-A`: question, context, options and a (generated) rationale -> `The answer is (X).` (the answer stage)
"""

from __future__ import annotations

from typing import Any

from align.data.problem import OPTION_LETTERS, Problem

FORMATS = ("QCM-E", "QCM-A", "QCM-EA", "QCMG-A")


def format_options(choices: tuple[str, ...] | list[str]) -> str:
    """`(A) first (B) second ...`"""
    return " ".join(f"({OPTION_LETTERS[k]}) {choice}" for k, choice in enumerate(choices))


def build_prompt(problem: Problem, fmt: str = "QCM-E", rationale: str | None = None) -> str:
    """The model input for `fmt`; `QCMG-A` needs the `rationale` to condition on."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown prompt format {fmt!r}; expected one of {FORMATS}")
    text = (
        f"Question: {problem.question}\n"
        f"Context: {problem.context or 'N/A'}\n"
        f"Options: {format_options(problem.choices)}\n"
    )
    if fmt == "QCMG-A":
        if rationale is None:
            raise ValueError("format 'QCMG-A' needs the rationale to condition on")
        text += f"{ensure_solution_prefix(rationale)}\n"
    return text


def ensure_solution_prefix(rationale: str) -> str:
    """`Solution: ...` whether or not the rationale already starts with the prefix."""
    rationale = rationale.strip()
    return rationale if rationale.startswith("Solution:") else f"Solution: {rationale}"


def rationale_target(problem: Problem) -> str:
    """The gold rationale in MM-CoT's target form: `Solution: {lecture} {solution}`."""
    return ensure_solution_prefix(problem.gold_rationale)


def answer_target(problem: Problem) -> str:
    """`The answer is (X).`"""
    return f"The answer is ({problem.answer_letter})."


def build_target(problem: Problem, fmt: str = "QCM-E") -> str:
    """The training target for `fmt`."""
    if fmt == "QCM-E":
        return rationale_target(problem)
    if fmt in ("QCM-A", "QCMG-A"):
        return answer_target(problem)
    if fmt == "QCM-EA":
        return f"{rationale_target(problem)} {answer_target(problem)}"
    raise ValueError(f"unknown prompt format {fmt!r}; expected one of {FORMATS}")


def chat_messages(
    problem: Problem, fmt: str = "QCM-E", rationale: str | None = None, with_image: bool = True
) -> list[dict[str, Any]]:
    """One user turn in the content-list form HF processors' chat templates take: an image entry (when the
    problem has an image and `with_image`) followed by the MM-CoT text."""
    content: list[dict[str, Any]] = []
    if with_image and problem.image is not None:
        content.append({"type": "image"})
    content.append({"type": "text", "text": build_prompt(problem, fmt, rationale)})
    return [{"role": "user", "content": content}]
