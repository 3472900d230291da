"""Reward functions for the PPO trainer: each returns per-token rewards for a batch of sampled responses.

One interface serves sentence-level teacher feedback (ARES), sequence-level reward models and plain Python
functions: `RewardFn.__call__(samples) -> list[TokenRewards]`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch

from align.rl.rewards import sentence_end_tokens, sentence_rewards
from align.text.sentences import split_sentences


@dataclass
class Sample:
    """One sampled response: its problem, decoded text, and for each response token the length of the
    text decoded from tokens 0..i (to map character positions to tokens)."""

    problem: Any
    text: str
    token_char_ends: list[int]

    @property
    def num_tokens(self) -> int:
        return len(self.token_char_ends)


@dataclass
class TokenRewards:
    """Per-token rewards of one sample, or `dropped` with the reason (the sample leaves the batch)."""

    rewards: torch.Tensor | None
    dropped: str | None = None
    sentence_scores: list[float] = field(default_factory=list)


class RewardFn(Protocol):
    def __call__(self, samples: list[Sample]) -> list[TokenRewards]: ...


class SentenceTeacherReward:
    """ARES's reward: the teacher scores every sentence; `score - neutral_score` lands on the sentence's
    last token. A sample whose feedback failed (unparsable, wrong count, out of range) is dropped with the
    teacher's reason. Requests run concurrently through the teacher's async interface."""

    def __init__(self, teacher: Any, neutral_score: float = 0.5, concurrency: int = 16):
        self.teacher, self.neutral_score = teacher, neutral_score
        self.concurrency = concurrency

    async def _score_all(self, samples: list[Sample], sentences: list[list[str]]) -> list[Any]:
        gate = asyncio.Semaphore(self.concurrency)

        async def one(sample: Sample, texts: list[str]) -> Any:
            if not texts:
                return None
            async with gate:
                try:
                    return await self.teacher.ascore_sentences(sample.problem, texts)
                except Exception as err:  # a failed request drops the sample; it is counted, not hidden
                    return err

        return await asyncio.gather(*(one(s, t) for s, t in zip(samples, sentences, strict=True)))

    def __call__(self, samples: list[Sample]) -> list[TokenRewards]:
        spans = [split_sentences(s.text) for s in samples]
        texts = [[sp.text for sp in sample_spans] for sample_spans in spans]
        results = self.teacher.run_sync(self._score_all(samples, texts))
        out = []
        for sample, sample_spans, fb in zip(samples, spans, results, strict=True):
            if fb is None:
                out.append(TokenRewards(None, "empty response"))
            elif isinstance(fb, Exception):
                out.append(TokenRewards(None, f"teacher error: {fb}"))
            elif not fb.ok:
                out.append(TokenRewards(None, f"teacher feedback rejected: {fb.failure}"))
            else:
                ends = sentence_end_tokens(sample.token_char_ends, [sp.end for sp in sample_spans])
                rewards = sentence_rewards(fb.scores, ends, sample.num_tokens, self.neutral_score)
                out.append(TokenRewards(rewards, None, list(fb.scores)))
        return out


class SequenceReward:
    """A scalar reward per response (a reward model's score or any Python function of problem and text),
    placed on the last response token."""

    def __init__(self, fn: Callable[[Any, str], float]):
        self.fn = fn

    def __call__(self, samples: list[Sample]) -> list[TokenRewards]:
        out = []
        for sample in samples:
            rewards = torch.zeros(sample.num_tokens)
            if sample.num_tokens:
                rewards[-1] = float(self.fn(sample.problem, sample.text))
            out.append(TokenRewards(rewards))
        return out
