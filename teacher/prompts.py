"""Versioned prompts for the three teacher tasks, and how their replies are read.

A prompt's text is ours, written from the ARES paper's description (Byun et al., 2024, sec. 3): the teacher
sees the question, options, context, the correct answer (and the image) and scores each sentence 0.0-1.0 in
0.1 steps (0 wrong, 0.5 neutral start or guiding fact, 1.0 correct and relevant, a repeat 0.0); it corrects
a rationale without deleting wrong sentences; and it judges which of two rationales is better. Changing any
text here means a new version string: the cache keys on it.
"""

from __future__ import annotations

import json
from pathlib import Path

from teacher.backends.base import image_media_type
from teacher.parsing import ReplyError, extract_json_object, validate_scores, validate_text, validate_verdict
from teacher.records import Feedback, ProblemLike, RawReply, TeacherRequest

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
SCORE_VERSION, CORRECT_VERSION, JUDGE_VERSION = "score-v1", "correct-v1", "judge-v1"

SCORE_SYSTEM = """You grade the reasoning of a student, one sentence at a time.
You are given a multiple-choice problem, its correct answer, and the student's rationale split into numbered
sentences. Give each sentence a score from 0.0 to 1.0 in steps of 0.1:
- 1.0: correct and relevant; it moves the reasoning toward the correct answer.
- 0.5: neutral; a starting thought, or a true statement that helps later steps.
- 0.0: wrong, irrelevant, or a repeat of an earlier sentence.
Use the values in between for partly correct sentences. Return exactly one score per sentence, in order,
as JSON: {"scores": [...]}."""

CORRECT_SYSTEM = """You correct a student's rationale for a multiple-choice problem.
Keep sentences that are correct or that are a reasonable starting point. Fix grammar and complete unfinished
sentences using only the information given. Correct wrong sentences instead of deleting them. Use the options,
the context and the correct answer. Do not add facts that the problem does not support.
Return JSON: {"corrected_rationale": "..."}."""

JUDGE_SYSTEM = """You compare two rationales written for the same multiple-choice problem.
Judge which rationale explains the correct answer better: correct facts, sound steps, relevance, no
repetition, complete sentences. Length alone is not quality. If they are equally good, say "tie".
Return JSON: {"verdict": "A" | "B" | "tie", "reason": "..."}."""

SCORE_SCHEMA = {
    "type": "object",
    "properties": {"scores": {"type": "array", "items": {"type": "number", "minimum": 0, "maximum": 1}}},
    "required": ["scores"],
    "additionalProperties": False,
}
CORRECT_SCHEMA = {
    "type": "object",
    "properties": {"corrected_rationale": {"type": "string"}},
    "required": ["corrected_rationale"],
    "additionalProperties": False,
}
JUDGE_SCHEMA = {
    "type": "object",
    "properties": {"verdict": {"type": "string", "enum": ["A", "B", "tie"]}, "reason": {"type": "string"}},
    "required": ["verdict", "reason"],
    "additionalProperties": False,
}

DEFAULT_PARAMS = {"temperature": 0.0, "max_tokens": 1024}


def _problem_block(problem: ProblemLike) -> dict:
    options = {LETTERS[k]: c for k, c in enumerate(problem.choices)}
    return {
        "question": problem.question,
        "options": options,
        "context": problem.context or "N/A",
        "correct_answer": f"({LETTERS[problem.answer]}) {problem.choices[problem.answer]}",
    }


def _images(problem: ProblemLike) -> tuple[bytes, ...]:
    """The problem's image bytes; an unreadable file or one that is not an image is named in the error."""
    image = getattr(problem, "image", None)
    if not image:
        return ()
    data = Path(image).read_bytes()
    try:
        image_media_type(data)
    except ValueError:
        raise ValueError(
            f"problem {problem.id!r}: image {image} is not a PNG, JPEG, GIF or WebP image"
        ) from None
    return (data,)


def _gold(problem: ProblemLike) -> str:
    return " ".join(p for p in (problem.lecture, problem.solution) if p).strip()


def score_request(problem: ProblemLike, sentences: list[str], params: dict | None = None) -> TeacherRequest:
    block = {**_problem_block(problem), "sentences": {str(k + 1): s for k, s in enumerate(sentences)}}
    return TeacherRequest(
        task="score",
        prompt_version=SCORE_VERSION,
        system=SCORE_SYSTEM,
        user_text=json.dumps(block, ensure_ascii=False, indent=1),
        images=_images(problem),
        schema=SCORE_SCHEMA,
        params={**DEFAULT_PARAMS, **(params or {})},
        expect=len(sentences),
        item_id=str(problem.id),
        payload={**block, "sentences": list(sentences), "answer": problem.answer, "gold": _gold(problem)},
    )


def correct_request(problem: ProblemLike, rationale: str, params: dict | None = None) -> TeacherRequest:
    block = {**_problem_block(problem), "rationale": rationale}
    return TeacherRequest(
        task="correct",
        prompt_version=CORRECT_VERSION,
        system=CORRECT_SYSTEM,
        user_text=json.dumps(block, ensure_ascii=False, indent=1),
        images=_images(problem),
        schema=CORRECT_SCHEMA,
        params={**DEFAULT_PARAMS, **(params or {})},
        item_id=str(problem.id),
        payload={**block, "answer": problem.answer, "gold": _gold(problem)},
    )


def judge_request(
    problem: ProblemLike, rationale_a: str, rationale_b: str, params: dict | None = None
) -> TeacherRequest:
    block = {**_problem_block(problem), "rationale_A": rationale_a, "rationale_B": rationale_b}
    return TeacherRequest(
        task="judge",
        prompt_version=JUDGE_VERSION,
        system=JUDGE_SYSTEM,
        user_text=json.dumps(block, ensure_ascii=False, indent=1),
        images=_images(problem),
        schema=JUDGE_SCHEMA,
        params={**DEFAULT_PARAMS, **(params or {})},
        item_id=str(problem.id),
        payload={**block, "answer": problem.answer, "gold": _gold(problem)},
    )


def parse_reply(request: TeacherRequest, reply: RawReply) -> Feedback:
    """Validate a raw reply for its request; a rejected reply becomes a failed `Feedback` with its reason."""
    fb = Feedback(
        task=request.task,
        ok=False,
        raw=reply.text,
        model=reply.model,
        prompt_version=request.prompt_version,
        input_tokens=reply.input_tokens,
        output_tokens=reply.output_tokens,
        latency_s=reply.latency_s,
    )
    try:
        obj = extract_json_object(reply.text)
        if request.task == "score":
            if "scores" not in obj:
                raise ReplyError("reply has no 'scores' field")
            fb.scores = validate_scores(obj["scores"], request.expect or 0)
        elif request.task == "correct":
            fb.text = validate_text(obj.get("corrected_rationale"))
        elif request.task == "judge":
            if "verdict" not in obj:
                raise ReplyError("reply has no 'verdict' field")
            fb.verdict = validate_verdict(obj["verdict"])
        else:
            raise ReplyError(f"unknown task {request.task!r}")
    except ReplyError as err:
        fb.failure = str(err)
        return fb
    fb.ok = True
    return fb


def repair_message(failure: str) -> str:
    """The follow-up sent once when a reply was rejected."""
    return f"Your reply could not be used: {failure}. Reply again with only the JSON object, nothing else."
