"""Rewards from sequence classifiers: a sentiment classifier's label score (IMDB) or a reward model's scalar
(TL;DR), batched, on the last response token through the PPO trainer's `SequenceReward`."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from align.trainers.reward_fns import Sample, SequenceReward, TokenRewards

REWARD_KINDS = ("logit", "prob")
ScoreBatch = Callable[[list[Any], list[str]], list[float]]


def find_label(id2label: dict[int, str], label: str, model: str) -> int:
    """The index of the label called `label` (case and punctuation ignored), or an error listing the labels."""

    def norm(s: str) -> str:
        return "".join(ch for ch in s.lower() if ch.isalnum())

    for index, name in id2label.items():
        if norm(str(name)) == norm(label):
            return int(index)
    raise ValueError(f"classifier {model!r} has no label {label!r}; its labels are {list(id2label.values())}")


class ClassifierScore:
    """Scores texts with an `AutoModelForSequenceClassification`: the logit (or softmax probability) of the
    label named `label`, or the single output of a reward model (`label=""`).

    IMDB (the symmetric-loss paper): `lvwerra/distilbert-imdb`, label POSITIVE. A score that is not a finite
    number is an error naming the model and the text."""

    def __init__(
        self,
        model: str,
        label: str = "",
        kind: str = "logit",
        batch_size: int = 16,
        max_length: int = 0,
        truncation_side: str = "left",
        device: str | torch.device | None = None,
        dtype: str = "float32",
        quantization: str = "",
    ):
        if kind not in REWARD_KINDS:
            raise ValueError(f"reward kind must be one of {REWARD_KINDS}, got {kind!r}")
        from align.models.loading import quantization_config

        kwargs: dict[str, Any] = {"dtype": dtype if dtype == "auto" else getattr(torch, dtype)}
        qconfig = quantization_config(quantization or None)
        if qconfig is not None:
            kwargs["quantization_config"] = qconfig
        self.name, self.kind, self.batch_size = model, kind, batch_size
        self.model = AutoModelForSequenceClassification.from_pretrained(model, **kwargs).eval()
        self.model.requires_grad_(False)
        if qconfig is None and device is not None:
            self.model.to(device)
        self.tokenizer = AutoTokenizer.from_pretrained(model)
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        if self.model.config.pad_token_id is None:
            self.model.config.pad_token_id = self.tokenizer.pad_token_id
        self.tokenizer.truncation_side = truncation_side
        self.max_length = max_length or min(
            int(self.tokenizer.model_max_length), self._context_length() or int(1e9)
        )
        num_labels = self.model.config.num_labels
        if label:
            if num_labels == 1:
                raise ValueError(f"{model!r} has a single output (a reward model); set the label to ''")
            self.index = find_label(self.model.config.id2label, label, model)
        elif num_labels != 1:
            raise ValueError(
                f"{model!r} has {num_labels} labels {list(self.model.config.id2label.values())}; name the one "
                "that is rewarded"
            )
        else:
            self.index = 0

    def _context_length(self) -> int | None:
        cfg = self.model.config
        for name in ("max_position_embeddings", "n_positions"):
            value = getattr(cfg, name, None)
            if isinstance(value, int) and value > 0:
                return value
        return None

    @property
    def eos_token(self) -> str:
        return self.tokenizer.eos_token or ""

    @torch.no_grad()
    def score_texts(self, texts: Sequence[str]) -> list[float]:
        device = next(self.model.parameters()).device
        out: list[float] = []
        for start in range(0, len(texts), self.batch_size):
            chunk = list(texts[start : start + self.batch_size])
            batch = self.tokenizer(
                chunk, return_tensors="pt", padding=True, truncation=True, max_length=self.max_length
            ).to(device)
            logits = self.model(**batch).logits.float()
            if self.kind == "prob":
                probs = torch.sigmoid(logits) if logits.shape[-1] == 1 else torch.softmax(logits, -1)
                values = probs[:, self.index]
            else:
                values = logits[:, self.index]
            for text, value in zip(chunk, values.tolist(), strict=True):
                if not math.isfinite(value):
                    raise ValueError(
                        f"reward model {self.name!r} returned {value} for the text {text[:200]!r}"
                    )
                out.append(value)
        return out


class BatchedSequenceReward(SequenceReward):
    """`SequenceReward` (the scalar on the last response token) for a scorer that rates a whole batch at once:
    `score_batch(problems, texts) -> scores`. A score that is not a finite number is an error naming the
    problem and the text."""

    def __init__(self, score_batch: ScoreBatch):
        super().__init__(self._lookup)
        self.score_batch = score_batch
        self._scores: dict[tuple[int, str], float] = {}

    def _lookup(self, problem: Any, text: str) -> float:
        return self._scores[(id(problem), text)]

    def __call__(self, samples: list[Sample]) -> list[TokenRewards]:
        problems, texts = [s.problem for s in samples], [s.text for s in samples]
        scores = self.score_batch(problems, texts)
        if len(scores) != len(samples):
            raise ValueError(f"the reward function returned {len(scores)} scores for {len(samples)} samples")
        for problem, text, score in zip(problems, texts, scores, strict=True):
            if not math.isfinite(float(score)):
                raise ValueError(
                    f"the reward for a sample of prompt {getattr(problem, 'id', '?')!r} is {score} "
                    f"(text {text[:200]!r}); rewards must be finite numbers"
                )
        self._scores = {(id(p), t): float(s) for p, t, s in zip(problems, texts, scores, strict=True)}
        return super().__call__(samples)


def sentiment_score(scorer: ClassifierScore, include_prompt: bool = True) -> ScoreBatch:
    """IMDB: the classifier's score of prompt + continuation (the authors' code scores both) or of the
    continuation alone."""
    return lambda prompts, texts: scorer.score_texts(
        [(p.prompt + t) if include_prompt else t for p, t in zip(prompts, texts, strict=True)]
    )


def summary_text(prompt: str, completion: str, eos_token: str) -> str:
    """What TRL's RewardTrainer scores for a standard prompt/completion pair: prompt + completion + EOS."""
    if eos_token and not completion.endswith(eos_token):
        completion += eos_token
    return prompt + completion


def summary_score(scorer: ClassifierScore) -> ScoreBatch:
    """TL;DR: the learned reward model's score of post + summary, formatted as in reward-model training."""
    return lambda prompts, texts: scorer.score_texts(
        [summary_text(p.prompt, t, scorer.eos_token) for p, t in zip(prompts, texts, strict=True)]
    )
