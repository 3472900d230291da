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
    text decoded from tokens 0..i (to map character positions to tokens). `length` is the number of tokens
    the policy generated (up to and including its stop token); the columns after it are padding."""

    problem: Any
    text: str
    token_char_ends: list[int]
    length: int | None = None

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
    placed on the last generated token (the stop token when the response has one), never on padding."""

    def __init__(self, fn: Callable[[Any, str], float]):
        self.fn = fn

    def __call__(self, samples: list[Sample]) -> list[TokenRewards]:
        out = []
        for sample in samples:
            rewards = torch.zeros(sample.num_tokens)
            last = sample.num_tokens if sample.length is None else min(sample.length, sample.num_tokens)
            if last:
                rewards[last - 1] = float(self.fn(sample.problem, sample.text))
            out.append(TokenRewards(rewards))
        return out
