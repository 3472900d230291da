"""ARES's reward (Byun et al., 2024, sec. 3.1): the teacher scores every sentence of a sampled rationale and
`score - neutral_score` lands on the sentence's last token."""

from __future__ import annotations

import asyncio
from typing import Any

from align.rl.rewards import NEUTRAL_SCORE, sentence_end_tokens, sentence_rewards
from align.text.sentences import split_sentences
from align.trainers.reward_fns import Sample, TokenRewards


class SentenceTeacherReward:
    """A `RewardFn`: sentence-level teacher feedback as token rewards. A sample whose feedback failed
    (unparsable, wrong count, out of range, request error) is dropped with the teacher's reason.
    Requests run concurrently through the teacher's async interface."""

    def __init__(self, teacher: Any, neutral_score: float = NEUTRAL_SCORE, concurrency: int = 16):
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
