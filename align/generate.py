"""Sampling rationales (or answers) from a policy for a list of problems, batched and image-aware."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from align.data.problem import Problem
from align.data.prompts import build_prompt
from align.models.inputs import encode
from align.models.loading import LoadedPolicy
from align.models.tokens import generation_settings


@dataclass
class SamplingConfig:
    """How to sample from the policy (ARES: k=4 rationales per question, top-k 50)."""

    num_samples: int = field(default=4, metadata={"help": "Samples per prompt (ARES's k)."})
    max_new_tokens: int = field(default=64, metadata={"help": "Maximum generated tokens per sample."})
    do_sample: bool = field(default=True, metadata={"help": "Sample (True) or greedy decoding (False)."})
    top_k: int = field(default=50, metadata={"help": "Top-k sampling cut-off (0 disables)."})
    top_p: float = field(default=1.0, metadata={"help": "Nucleus sampling cut-off."})
    temperature: float = field(default=1.0, metadata={"help": "Sampling temperature."})
    batch_size: int = field(default=8, metadata={"help": "Prompts per generate() call."})


def _groups(problems: list[Problem]) -> list[list[int]]:
    """Indices grouped by whether the problem has an image (a VLM batch needs all or none)."""
    with_image = [k for k, p in enumerate(problems) if p.image is not None]
    without = [k for k, p in enumerate(problems) if p.image is None]
    return [g for g in (with_image, without) if g]


@torch.no_grad()
def generate_texts(
    policy: LoadedPolicy,
    problems: list[Problem],
    sampling: SamplingConfig,
    fmt: str = "QCM-E",
    rationales: list[str] | None = None,
    chat: bool | None = None,
) -> list[list[str]]:
    """`num_samples` completions for each problem (in problem order), decoded without special tokens.
    Prompts go through the chat template when `chat` is true, or None and the policy has one."""
    out: list[list[str]] = [[] for _ in problems]
    device = next(policy.model.parameters()).device
    for group in _groups(problems) if policy.is_vlm else [list(range(len(problems)))]:
        for start in range(0, len(group), sampling.batch_size):
            idx = group[start : start + sampling.batch_size]
            prompts = [build_prompt(problems[k], fmt, rationales[k] if rationales else None) for k in idx]
            images = [problems[k].image for k in idx] if policy.is_vlm else None
            batch = encode(policy, prompts, images, chat=chat).to(device)
            generated = policy.model.generate(
                **batch,
                max_new_tokens=sampling.max_new_tokens,
                do_sample=sampling.do_sample,
                top_k=sampling.top_k if sampling.do_sample else None,
                top_p=sampling.top_p if sampling.do_sample else None,
                temperature=sampling.temperature if sampling.do_sample else None,
                num_return_sequences=sampling.num_samples,
                **generation_settings(policy),
            )
            texts = policy.tokenizer.batch_decode(
                generated[:, batch["input_ids"].shape[1] :], skip_special_tokens=True
            )
            for j, k in enumerate(idx):
                out[k] = [t.strip() for t in texts[j * sampling.num_samples : (j + 1) * sampling.num_samples]]
    return out
