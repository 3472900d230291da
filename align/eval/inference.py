"""Two-stage inference as in Multimodal-CoT: a rationale model writes the rationale (QCM-E), an answer model
reads problem + rationale (QCMG-A) and answers; plus training the answer model (LoRA r 64, alpha 128,
dropout 0.05 on all linear layers, as in ARES)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from align.data.prompts import answer_target
from align.eval.answers import extract_answer
from align.generate import SamplingConfig, generate_texts
from align.models.loading import LoadedPolicy
from align.trainers.sft import SFTConfig, sft_train


@dataclass
class TwoStageOutput:
    rationales: list[str]
    answers: list[str]
    predictions: list[int | None]


def answer_with_rationales(
    answer_policy: LoadedPolicy,
    problems: list[Any],
    rationales: list[str],
    max_new_tokens: int = 16,
    batch_size: int = 8,
) -> tuple[list[str], list[int | None]]:
    """Greedy answers conditioned on the rationales; the chosen option via `extract_answer`."""
    greedy = SamplingConfig(
        num_samples=1, max_new_tokens=max_new_tokens, do_sample=False, batch_size=batch_size
    )
    texts = [
        s[0] for s in generate_texts(answer_policy, problems, greedy, fmt="QCMG-A", rationales=rationales)
    ]
    return texts, [extract_answer(t, p.choices) for t, p in zip(texts, problems, strict=True)]


def two_stage(
    rationale_policy: LoadedPolicy,
    answer_policy: LoadedPolicy,
    problems: list[Any],
    rationale_tokens: int = 128,
    answer_tokens: int = 16,
    batch_size: int = 8,
) -> TwoStageOutput:
    """Rationale model then answer model (the same policy for single-model rationale-then-answer)."""
    greedy = SamplingConfig(
        num_samples=1, max_new_tokens=rationale_tokens, do_sample=False, batch_size=batch_size
    )
    rationales = [s[0] for s in generate_texts(rationale_policy, problems, greedy, fmt="QCM-E")]
    answers, predictions = answer_with_rationales(
        answer_policy, problems, rationales, answer_tokens, batch_size
    )
    return TwoStageOutput(rationales, answers, predictions)


def train_answer_model(
    policy: LoadedPolicy, problems: list[Any], rationales: list[str], cfg: SFTConfig
) -> list[float]:
    """Fine-tune an answer model on (problem + rationale -> "The answer is (X).") with QCMG-A prompts. Load the
    policy with `LoraSettings()` (r 64, alpha 128, dropout 0.05, all linear layers) for the paper's setting."""
    cfg = SFTConfig(**{**cfg.__dict__, "prompt_format": "QCMG-A"})
    return sft_train(policy, problems, [answer_target(p) for p in problems], cfg, rationales)
