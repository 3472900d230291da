"""An LLM judge of two summaries of one post, for the win-rate code in `align.eval.winrate`.

It sends a versioned summary-comparison prompt of ours through any teacher (`openai:gpt-4o` as in the paper's
GPT-4 evaluation, `anthropic:...`, a local model, or the offline `reference` teachers) and reads the same JSON
verdict as the rationale judge, so the teacher's validation, repair turn and feedback cache all apply. The
offline reference teachers judge by the summaries' similarity to the post (the request's `gold`).
"""

from __future__ import annotations

import json
from typing import Any

from teacher import prompts
from teacher.records import Feedback, TeacherRequest
from teacher.tasks import TeacherTasks

SUMMARY_JUDGE_VERSION = "tldr-judge-v1"
SUMMARY_JUDGE_SYSTEM = """You compare two summaries of the same Reddit post.
Judge which summary is better: it states the most important points of the post accurately and concisely,
adds nothing the post does not say, and reads as complete, fluent text. Length alone is not quality. If the
two are equally good, say "tie".
Return JSON: {"verdict": "A" | "B" | "tie", "reason": "..."}."""


def summary_judge_request(
    post_id: str, post: str, summary_a: str, summary_b: str, params: dict | None = None
) -> TeacherRequest:
    block = {"post": post, "summary_A": summary_a, "summary_B": summary_b}
    return TeacherRequest(
        task="judge",
        prompt_version=SUMMARY_JUDGE_VERSION,
        system=SUMMARY_JUDGE_SYSTEM,
        user_text=json.dumps(block, ensure_ascii=False, indent=1),
        schema=prompts.JUDGE_SCHEMA,
        params={**prompts.DEFAULT_PARAMS, **(params or {})},
        item_id=post_id,
        payload={"rationale_A": summary_a, "rationale_B": summary_b, "gold": post, "answer": 0},
    )


class SummaryJudge(TeacherTasks):
    """A judge of summaries over any `Teacher` or `CachedTeacher` (cached verdicts make a re-run free):
    `judge_many(prompts, summaries_a, summaries_b)` as `align.eval.winrate.judge_win_rate` calls it, where a
    prompt is an `RLPrompt` whose text is the post."""

    def __init__(self, teacher: Any):
        self.teacher = teacher
        inner = getattr(teacher, "teacher", teacher)
        self.params = getattr(inner, "params", None)

    def build(self, task: str, problem: Any, *args: Any) -> TeacherRequest:
        if task != "judge":
            raise ValueError(f"the summary judge only judges; got task {task!r}")
        post = problem.prompt.removesuffix("TL;DR:").strip()
        return summary_judge_request(str(problem.id), post, args[0], args[1], self.params)

    async def run(self, request: TeacherRequest) -> Feedback:
        return await self.teacher.run(request)

    def run_sync(self, coro: Any) -> Any:
        return self.teacher.run_sync(coro)

    @property
    def name(self) -> str:
        return self.teacher.name

    @property
    def model(self) -> str:
        return self.teacher.model
