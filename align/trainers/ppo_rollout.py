"""The named steps of a PPO rollout that need no model: dropping samples the reward function refused, the
KL-shaped token rewards, GAE, and the state that lets the first update micro-step train on the scoring pass's
forward (`ScoringReuse`). The trainer (`align.trainers.ppo.PPOTrainer.rollout`) runs them in order:
sampling, rewards, dropping, scoring, KL, advantages, whitening.

Dtypes: whatever dtype the model computes in (float32, bf16 autocast, DeepSpeed's bf16 weights), what these
steps see is float32: log-probs (`scoring.token_logprobs`), values (`scoring.ValueHead`) and rewards are
float32, so the KL penalty, GAE, whitening and the losses are computed in float32.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from align.rl.advantages import masked_gae
from align.rl.rewards import token_rewards
from align.trainers.reward_fns import Sample, TokenRewards
from align.trainers.rollout import Chunk


@dataclass
class ScoringReuse:
    """The scoring pass's forward (with its graph) of the first update micro-step, kept so that the update
    does not run it again (`PPOConfig.reuse_scoring_forward`). `pending` is true until the scoring pass has
    kept one; `kept[i]` is (chunk, rows, forward outputs) of update micro-step i, None once taken."""

    pending: bool = False
    kept: list[tuple[Chunk, torch.Tensor, tuple] | None] = field(default_factory=list)

    def start(self, wanted: bool) -> None:
        """A new rollout: forget what an earlier one kept; keep the next scored minibatch when `wanted`."""
        self.pending, self.kept = wanted, []

    def claim(self) -> bool:
        """Whether the minibatch about to be scored is the one to keep (true once per rollout)."""
        claimed, self.pending = self.pending, False
        return claimed

    def keep(self, chunk: Chunk, rows: torch.Tensor, outputs: tuple) -> None:
        self.kept.append((chunk, rows, outputs))

    def take(self, step: int, chunk: Chunk, rows: torch.Tensor) -> tuple | None:
        """The kept forward of update micro-step `step` if it is for these rows (each is taken once)."""
        if step >= len(self.kept) or self.kept[step] is None:
            return None
        kept_chunk, kept_rows, outputs = self.kept[step]
        self.kept[step] = None
        return outputs if kept_chunk is chunk and torch.equal(kept_rows, rows) else None

    def clear(self) -> None:
        self.pending, self.kept = False, []


def keep_rewarded(chunk: Chunk, scored: list[TokenRewards]) -> Chunk | None:
    """The chunk without the samples the reward function dropped, their token rewards attached as
    `score_rewards` (float32); None when every sample was dropped."""
    keep = [i for i, r in enumerate(scored) if r.dropped is None]
    if not keep:
        return None
    chunk = chunk.select(torch.tensor(keep))
    rewards = torch.stack([scored[i].rewards for i in keep]).float()
    chunk.score_rewards = rewards.to(chunk.input_ids.device)
    return chunk


def add_kl_rewards(chunk: Chunk, kl_coef: float, estimator: str) -> None:
    """Token rewards with the per-token KL penalty against the reference (`chunk.rewards`, `chunk.kl`)."""
    mask = chunk.response_mask.float()
    chunk.rewards, chunk.kl = token_rewards(
        chunk.score_rewards, chunk.old_logp, chunk.ref_logp, mask, kl_coef, estimator
    )


def add_advantages(chunk: Chunk, gamma: float, lam: float) -> None:
    """GAE advantages and returns over the response tokens (`chunk.advantages`, `chunk.returns`)."""
    mask = chunk.response_mask.float()
    chunk.advantages, chunk.returns = masked_gae(chunk.rewards, chunk.values, mask, gamma, lam)


def scored_buffers(chunk: Chunk) -> None:
    """float32 zeros for the old log-probs, values and reference log-probs the scoring pass fills."""
    n, length = chunk.input_ids.shape[0], chunk.response_mask.shape[1]
    device = chunk.input_ids.device
    chunk.old_logp, chunk.values, chunk.ref_logp = (
        torch.zeros(n, length, device=device, dtype=torch.float32) for _ in range(3)
    )


def samples_of(chunk: Chunk) -> list[Sample]:
    """The reward function's view of a chunk's rows."""
    lengths = chunk.response_mask.sum(1).tolist()
    return [
        Sample(p, t, e, n)
        for p, t, e, n in zip(chunk.problems, chunk.texts, chunk.token_char_ends, lengths, strict=True)
    ]
