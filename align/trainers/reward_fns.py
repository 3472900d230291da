"""Reward functions for the PPO trainer: each returns per-token rewards for a batch of sampled responses.

One interface serves sentence-level teacher feedback (ARES: `align.ares.reward.SentenceTeacherReward`),
sequence-level reward models and plain Python functions: `RewardFn.__call__(samples) -> list[TokenRewards]`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch


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
