"""Evaluation of an RLHF policy on held-out prompts: samples, reward, KL to the reference, perplexity under
the reference, distinct-n and ROUGE against reference texts.

KL to the reference per sample: the exact per-step KL over the vocabulary summed over the visited states
(non-negative; for sampled responses an unbiased, low-variance estimate of the sequence KL), and k1 = sum_t
log pi(y_t) - log pi_ref(y_t) of the generated tokens (what the PPO reward's penalty uses). Perplexity is
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
    out = policy.model.generate(
        **batch, max_new_tokens=max_new_tokens, **generation_settings(policy), **sampling
    )
    prompt_len = batch["input_ids"].shape[1]
    response = out[:, prompt_len:]
    stops = stop_token_ids(policy)
    rmask = response_mask_from(response, stops)
    texts, _ = decode_responses(policy.tokenizer, response, rmask, stops)
    attention = torch.cat([batch["attention_mask"], rmask.to(batch["attention_mask"].dtype)], dim=1)
    return Generations(texts, out, attention, rmask, prompt_len)


@torch.no_grad()
def completion_log_dists(model: Any, gen: Generations) -> torch.Tensor:
    """log pi(. | prompt, y_<t): the log-softmax over the vocabulary before every response token."""
    out = model(
        input_ids=gen.input_ids,
        attention_mask=gen.attention_mask,
        position_ids=position_ids_from_mask(gen.attention_mask),
    )
    return torch.log_softmax(out.logits[:, gen.prompt_len - 1 : -1].float(), -1)


def sampled_logprobs(log_dists: torch.Tensor, gen: Generations) -> torch.Tensor:
    """log pi(y_t | ...) of the generated tokens (0 where the response mask is 0)."""
    targets = gen.input_ids[:, gen.prompt_len :]
    return log_dists.gather(-1, targets.unsqueeze(-1)).squeeze(-1) * gen.response_mask


def kl_per_sample(
    log_dists: torch.Tensor, ref_log_dists: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per sample, summed over its response tokens: (exact, k1). Exact: sum_t KL(pi(.|s_t) || pi_ref(.|s_t))
    over the whole vocabulary at each visited state (non-negative; with sampled responses an unbiased,
    lower-variance estimate of the sequence KL); k1: sum_t log pi(y_t|s_t) - log pi_ref(y_t|s_t) of the
    generated tokens (unbiased only for sampled responses, can be negative)."""
    exact = (log_dists.exp() * (log_dists - ref_log_dists)).sum(-1)
    log_ratio = (log_dists - ref_log_dists).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    return (exact * mask).sum(-1), (log_ratio * mask).sum(-1)


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
    kl: list[float] = []
    k1: list[float] = []
    nll, tokens = 0.0, 0.0
    for start in range(0, len(prompts), batch_size):
        chunk = list(prompts[start : start + batch_size])
        gen = generate(policy, [p.prompt for p in chunk], max_new_tokens, do_sample, top_k, chat=chat)
        log_dists = completion_log_dists(model, gen)
        if reference is not None:
            ref_log_dists = completion_log_dists(reference, gen)
        else:
            with (reference_context or nullcontext)():
                ref_log_dists = completion_log_dists(model, gen)
        targets = gen.input_ids[:, gen.prompt_len :]
        a, b = kl_per_sample(log_dists, ref_log_dists, targets, gen.response_mask)
        kl += a.tolist()
        k1 += b.tolist()
        nll -= float(sampled_logprobs(ref_log_dists, gen).sum())
        tokens += float(gen.response_mask.sum())
        rewards += [float(x) for x in score(chunk, gen.texts)]
        texts += gen.texts
    model.train(was_training)
    reward_mean, reward_std = mean_std(rewards)
    result: dict[str, Any] = {
        "reward": reward_mean,
        "reward_std": reward_std,
        "kl": sum(kl) / len(kl),
        "kl_k1": sum(k1) / len(k1),
        "perplexity": math.exp(nll / tokens) if tokens else float("nan"),
        "distinct_1": distinct_n(texts, 1),
        "distinct_2": distinct_n(texts, 2),
        "mean_tokens": tokens / len(texts),
        "n": len(texts),
    }
    if with_rouge:
        result.update(rouge(texts, [p.reference for p in prompts]))
    result["samples"] = [
        {"id": p.id, "prompt": p.prompt, "text": t, "reward": r}
        for p, t, r in zip(prompts, texts, rewards, strict=True)
    ]
    return result
