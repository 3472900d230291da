"""ARES's reward (Byun et al., 2024, sec. 3.1): the teacher scores every sentence of a sampled rationale and
`score - neutral_score` lands on the sentence's last token."""

from __future__ import annotations

from align.rl.rewards import NEUTRAL_SCORE, sentence_end_tokens, sentence_rewards
from align.text.sentences import split_sentences
from align.trainers.reward_fns import Sample, TokenRewards
from teacher.protocols import TeacherLike


class SentenceTeacherReward:
    """A `RewardFn`: sentence-level teacher feedback as token rewards. A sample whose feedback failed
    (unparsable, wrong count, out of range, request error) is dropped with the teacher's reason.
    The teacher runs the requests concurrently (`score_many`, at most `concurrency` in flight)."""

    def __init__(self, teacher: TeacherLike, neutral_score: float = NEUTRAL_SCORE, concurrency: int = 16):
        self.teacher, self.neutral_score = teacher, neutral_score
        self.concurrency = concurrency

    def __call__(self, samples: list[Sample]) -> list[TokenRewards]:
        spans = [split_sentences(s.text) for s in samples]
        scored = [k for k, sample_spans in enumerate(spans) if sample_spans]
        feedback = self.teacher.score_many(
            [samples[k].problem for k in scored],
            [[sp.text for sp in spans[k]] for k in scored],
            concurrency=self.concurrency,
        )
        by_sample = dict(zip(scored, feedback, strict=True))
        out = []
        for k, (sample, sample_spans) in enumerate(zip(samples, spans, strict=True)):
            fb = by_sample.get(k)
            if fb is None:
                out.append(TokenRewards(None, "empty response"))
            elif not fb.ok:  # unparsable, wrong count, out of range or a failed request: dropped, counted
                out.append(TokenRewards(None, f"teacher feedback rejected: {fb.failure}"))
            else:
                ends = sentence_end_tokens(sample.token_char_ends, [sp.end for sp in sample_spans])
                rewards = sentence_rewards(fb.scores, ends, sample.num_tokens, self.neutral_score)
                out.append(TokenRewards(rewards, None, list(fb.scores)))
        return out
