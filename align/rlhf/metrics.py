"""Evaluation of an RLHF policy on held-out prompts: samples, reward, KL to the reference, perplexity under
the reference, distinct-n and ROUGE against reference texts.

KL is estimated per sample from the sampled tokens: k1 = sum_t log pi(y_t) - log pi_ref(y_t) (unbiased, can
be negative on a batch) and k3 = sum_t (r_t - 1) - log r_t with r_t = pi_ref/pi (non-negative). Perplexity is
exp of the mean negative log-likelihood per completion token under the reference, completions conditioned on
their prompts (the authors' TRIL code scores all samples joined by blank lines with a sliding window instead).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

import torch

from align.eval.quality import distinct_n
from align.models.inputs import encode, position_ids_from_mask
from align.models.loading import LoadedPolicy
from align.models.tokens import generation_settings, stop_token_ids
from align.trainers.rollout import decode_responses, response_mask_from


@dataclass
class Generations:
    """Sampled completions of a batch of prompts: token ids (left-padded prompt, then response), masks."""

    texts: list[str]
    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    response_mask: torch.Tensor
    prompt_len: int


@torch.no_grad()
def generate(
    policy: LoadedPolicy,
    prompts: Sequence[str],
    max_new_tokens: int,
    do_sample: bool = True,
    top_k: int = 50,
    top_p: float = 1.0,
    temperature: float = 1.0,
    chat: bool = False,
) -> Generations:
    """One completion per prompt, encoded, stopped and decoded as the PPO rollout does (raw text by default)."""
    device = next(policy.model.parameters()).device
    batch = encode(policy, list(prompts), chat=chat).to(device)
    sampling = (
        {"do_sample": True, "top_k": top_k, "top_p": top_p, "temperature": temperature}
        if do_sample
        else {"do_sample": False}
    )
    out = policy.model.generate(**batch, max_new_tokens=max_new_tokens, **generation_settings(policy), **sampling)
    prompt_len = batch["input_ids"].shape[1]
    response = out[:, prompt_len:]
    stops = stop_token_ids(policy)
    rmask = response_mask_from(response, stops)
    texts, _ = decode_responses(policy.tokenizer, response, rmask, stops)
    attention = torch.cat([batch["attention_mask"], rmask.to(batch["attention_mask"].dtype)], dim=1)
    return Generations(texts, out, attention, rmask, prompt_len)


@torch.no_grad()
def completion_logprobs(model: Any, gen: Generations) -> torch.Tensor:
    """log pi(y_t | prompt, y_<t) of every response token (0 where the response mask is 0)."""
    out = model(
        input_ids=gen.input_ids,
        attention_mask=gen.attention_mask,
        position_ids=position_ids_from_mask(gen.attention_mask),
    )
    logits = out.logits[:, gen.prompt_len - 1 : -1].float()
    targets = gen.input_ids[:, gen.prompt_len :]
    logp = torch.log_softmax(logits, -1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    return logp * gen.response_mask


def kl_per_sample(logp: torch.Tensor, ref_logp: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(k1, k3) sums over each sample's response tokens."""
    log_ratio = (logp - ref_logp) * mask
    k3 = (torch.expm1(-log_ratio) + log_ratio) * mask
    return log_ratio.sum(-1), k3.sum(-1)


def rouge(predictions: Sequence[str], references: Sequence[str]) -> dict[str, float]:
    """Mean ROUGE-1/2/L F1 (Lin, 2004; `rouge-score` with the Porter stemmer) of predictions against one
    reference each."""
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    totals = {"rouge1": 0.0, "rouge2": 0.0, "rougeL": 0.0}
    for pred, ref in zip(predictions, references, strict=True):
        for key, score in scorer.score(ref, pred).items():
            totals[key] += score.fmeasure
    n = max(len(predictions), 1)
    return {key: value / n for key, value in totals.items()}


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for one value)."""
    n = len(values)
    if not n:
        return float("nan"), float("nan")
    mean = sum(values) / n
    var = sum((v - mean) ** 2 for v in values) / (n - 1) if n > 1 else 0.0
    return mean, math.sqrt(var)


def evaluate_policy(
    policy: LoadedPolicy,
    prompts: Sequence[Any],
    score: Callable[[list[Any], list[str]], list[float]],
    max_new_tokens: int,
    reference: Any = None,
    reference_context: Callable[[], AbstractContextManager] | None = None,
    do_sample: bool = True,
    top_k: int = 50,
    batch_size: int = 16,
    seed: int = 0,
    with_rouge: bool = False,
    chat: bool = False,
) -> dict[str, Any]:
    """Sample one completion per prompt (seeded) and measure it. The reference is `reference` (a frozen
    model) or the policy itself under `reference_context()` (LoRA with the adapter disabled)."""
    torch.manual_seed(seed)
    model = policy.model
    was_training = model.training
    model.eval()
    texts: list[str] = []
    rewards: list[float] = []
    k1: list[float] = []
    k3: list[float] = []
    nll, tokens = 0.0, 0.0
    for start in range(0, len(prompts), batch_size):
        chunk = list(prompts[start : start + batch_size])
        gen = generate(policy, [p.prompt for p in chunk], max_new_tokens, do_sample, top_k, chat=chat)
        logp = completion_logprobs(model, gen)
        if reference is not None:
            ref_logp = completion_logprobs(reference, gen)
        else:
            with (reference_context or nullcontext)():
                ref_logp = completion_logprobs(model, gen)
        a, b = kl_per_sample(logp, ref_logp, gen.response_mask)
        k1 += a.tolist()
        k3 += b.tolist()
        nll -= float((ref_logp * gen.response_mask).sum())
        tokens += float(gen.response_mask.sum())
        rewards += [float(x) for x in score(chunk, gen.texts)]
        texts += gen.texts
    model.train(was_training)
    reward_mean, reward_std = mean_std(rewards)
    result: dict[str, Any] = {
        "reward": reward_mean,
        "reward_std": reward_std,
        "kl": sum(k1) / len(k1),
        "kl_k3": sum(k3) / len(k3),
        "perplexity": math.exp(nll / tokens) if tokens else float("nan"),
        "distinct_1": distinct_n(texts, 1),
        "distinct_2": distinct_n(texts, 2),
        "mean_tokens": tokens / len(texts),
        "n": len(texts),
    }
    if with_rouge:
        result.update(rouge(texts, [p.reference for p in prompts]))
    result["samples"] = [
        {"id": p.id, "prompt": p.prompt, "text": t, "reward": r} for p, t, r in zip(prompts, texts, rewards, strict=True)
    ]
    return result
