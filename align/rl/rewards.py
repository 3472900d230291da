"""Token-level rewards: sentence scores on sentence-final tokens (ARES) plus a per-token KL penalty."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence

import torch

# ARES's neutral teacher score: a starting thought or a true statement that guides later steps (reward 0).
NEUTRAL_SCORE = 0.5


def sentence_end_tokens(token_char_ends: Sequence[int], sentence_char_ends: Sequence[int]) -> list[int]:
    """For each sentence (by the exclusive end of its character span in the response text), the index of
    the response token that contains its last character. `token_char_ends[i]` is the length of the text
    decoded from tokens 0..i (non-decreasing)."""
    last = len(token_char_ends) - 1
    return [min(bisect_left(token_char_ends, end), last) for end in sentence_char_ends]


def sentence_rewards(
    scores: Sequence[float], end_tokens: Sequence[int], length: int, neutral_score: float = NEUTRAL_SCORE
) -> torch.Tensor:
    """ARES (Byun et al., 2024, sec. 3.1): reward `score - neutral_score` on each sentence's last token, 0
    elsewhere. Two sentences ending in one token add up."""
    if len(scores) != len(end_tokens):
        raise ValueError(f"{len(scores)} scores for {len(end_tokens)} sentences")
    rewards = torch.zeros(length)
    for score, index in zip(scores, end_tokens, strict=True):
        if not 0 <= index < length:
            raise ValueError(f"sentence end token {index} is outside a response of {length} tokens")
        rewards[index] += float(score) - neutral_score
    return rewards


def kl_penalty(logp: torch.Tensor, ref_logp: torch.Tensor, estimator: str = "k1") -> torch.Tensor:
    """Per-token KL(pi || pi_ref) estimate from log-probs of the sampled tokens (Schulman's k1 / k3)."""
    log_ratio = logp - ref_logp
    if estimator == "k1":
        return log_ratio
    if estimator == "k3":
        return torch.expm1(-log_ratio) + log_ratio
    raise ValueError(f"kl estimator must be 'k1' or 'k3', got {estimator!r}")


def token_rewards(
    score_rewards: torch.Tensor,
    logp: torch.Tensor,
    ref_logp: torch.Tensor,
    mask: torch.Tensor,
    kl_coef: float,
    estimator: str = "k1",
) -> tuple[torch.Tensor, torch.Tensor]:
    """(rewards, kl): score rewards minus `kl_coef` * KL on every response token; zero where masked."""
    kl = kl_penalty(logp, ref_logp, estimator) * mask
    return (score_rewards - kl_coef * kl) * mask, kl


class FixedKLController:
    """A constant KL coefficient (ARES: 1e-4)."""

    def __init__(self, coef: float):
        self.value = coef

    def update(self, current_kl: float, n_steps: int) -> None:
        pass


class AdaptiveKLController:
    """Ziegler et al. (2019): move the coefficient so that the observed KL tracks `target` over `horizon`."""

    def __init__(self, init_coef: float, target: float, horizon: int):
        self.value, self.target, self.horizon = init_coef, target, horizon

    def update(self, current_kl: float, n_steps: int) -> None:
        error = min(max(current_kl / self.target - 1.0, -0.2), 0.2)
        self.value *= 1.0 + error * n_steps / self.horizon
