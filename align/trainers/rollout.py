"""Rollouts for token-level PPO: sample responses and mark response tokens. The forward pass that scores
them (log-probs, values) is `align.trainers.scoring`; its names are re-exported here."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from align.models.inputs import encode
from align.models.loading import LoadedPolicy
from align.models.tokens import decode_with_char_ends, generation_settings, stop_token_ids
from align.models.vision_inputs import extend_aligned, split_rows
from align.trainers.prompt_source import MMCoTPrompt, PromptSource, render_prompts
from align.trainers.scoring import (  # noqa: F401 (PolicyWithValue, ValueHead, forward_tokens: re-exported)
    PolicyWithValue,
    ValueHead,
    forward_tokens,
    prompt_cache,
    shares_prompts,
)


@dataclass
class Chunk:
    """A homogeneous group of rollout sequences (all with images or all without), `prompt_len` columns of
    left-padded prompt followed by the response. `vision` holds each row's image inputs (any VLM layout,
    see `align.models.vision_inputs`), `extra` the token-aligned inputs (`mm_token_type_ids`) over all
    columns."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    prompt_len: int
    response_mask: torch.Tensor
    problems: list[Any]
    texts: list[str]
    token_char_ends: list[list[int]]
    vision: list[dict[str, torch.Tensor]] = field(default_factory=list)
    extra: dict[str, torch.Tensor] = field(default_factory=dict)
    old_logp: torch.Tensor | None = None
    ref_logp: torch.Tensor | None = None
    values: torch.Tensor | None = None
    rewards: torch.Tensor | None = None
    kl: torch.Tensor | None = None
    advantages: torch.Tensor | None = None
    returns: torch.Tensor | None = None
    score_rewards: torch.Tensor | None = None
    generation_logp: torch.Tensor | None = None

    def __len__(self) -> int:
        return self.input_ids.shape[0]

    def select(self, rows: torch.Tensor) -> Chunk:
        """The sub-chunk of the given rows (tensors indexed, lists picked)."""
        idx = rows.tolist()
        picked = {}
        for name in (
            "old_logp",
            "ref_logp",
            "values",
            "rewards",
            "kl",
            "advantages",
            "returns",
            "score_rewards",
            "generation_logp",
        ):
            value = getattr(self, name)
            picked[name] = value[rows] if value is not None else None
        return Chunk(
            input_ids=self.input_ids[rows],
            attention_mask=self.attention_mask[rows],
            prompt_len=self.prompt_len,
            response_mask=self.response_mask[rows],
            problems=[self.problems[i] for i in idx],
            texts=[self.texts[i] for i in idx],
            token_char_ends=[self.token_char_ends[i] for i in idx],
            vision=[self.vision[i] for i in idx] if self.vision else [],
            extra={k: v[rows] for k, v in self.extra.items()},
            **picked,
        )


def response_mask_from(response_ids: torch.Tensor, stop_ids: int | list[int]) -> torch.Tensor:
    """1 for response tokens up to and including the first stop token; 0 after it. A pad or other token
    sampled before the stop is part of the response (generation only pads after a row has stopped)."""
    stops = torch.tensor(
        [stop_ids] if isinstance(stop_ids, int) else list(stop_ids), device=response_ids.device
    )
    is_stop = torch.isin(response_ids, stops)
    after_stop = (is_stop.long().cumsum(1) - is_stop.long()) > 0
    return (~after_stop).long()


def decode_responses(
    tokenizer: Any, response: torch.Tensor, mask: torch.Tensor, stop_ids: list[int]
) -> tuple[list[str], list[list[int]]]:
    """Each response's text (up to its stop token) and, per token, the length of the text decoded through
    that token (exact for multi-byte characters; the stop token and the columns after it end the text)."""
    texts, ends = [], []
    for row, n in zip(response.tolist(), mask.sum(1).tolist(), strict=True):
        content = n - 1 if n and row[n - 1] in stop_ids else n
        text, e = decode_with_char_ends(tokenizer, row[:content])
        texts.append(text)
        ends.append(e + [len(text)] * (len(row) - content))
    return texts, ends


def generate_samples(model: Any, batch: Any, num_samples: int, settings: dict[str, Any]) -> Any:
    """`generate()` with `num_samples` samples per prompt. A text-only model runs each prompt's prefill once
    (all but its last token, into a KV cache that its samples share) instead of once per sample; the
    samples are drawn exactly as `num_return_sequences` draws them."""
    ids, mask = batch["input_ids"], batch["attention_mask"]
    if num_samples == 1 or set(batch) != {"input_ids", "attention_mask"} or ids.shape[1] < 2:
        return model.generate(
            **batch, num_return_sequences=num_samples, return_dict_in_generate=True, **settings
        )
    if not shares_prompts(model):
        return model.generate(
            **batch, num_return_sequences=num_samples, return_dict_in_generate=True, **settings
        )
    name, cache, _ = prompt_cache(model, ids[:, :-1], mask[:, :-1])
    cache.batch_repeat_interleave(num_samples)
    return model.generate(
        input_ids=ids.repeat_interleave(num_samples, 0),
        attention_mask=mask.repeat_interleave(num_samples, 0),
        return_dict_in_generate=True,
        **{name: cache},
        **settings,
    )


@torch.no_grad()
def sample_chunk(
    policy: LoadedPolicy,
    problems: list[Any],
    num_samples: int,
    generate_kwargs: dict[str, Any],
    prompt_source: PromptSource | None = None,
    chat: bool | None = None,
) -> Chunk:
    """Sample `num_samples` responses per problem (all prompts with images, or all without).

    Prompts come from `prompt_source` (ARES's MM-CoT `QCM-E` prompt by default), through the chat template
    when `chat` is true or None and the policy has one. Generation stops at any of the model's stop tokens
    and never samples special tokens (image placeholders, chat markers). `generate_kwargs` with
    `output_logits=True` also records the generation-time log-probs of the sampled tokens
    (`chunk.generation_logp`), a check that training forward passes see what sampling saw.
    """
    device = next(policy.model.parameters()).device
    prompts = render_prompts(prompt_source or MMCoTPrompt(), problems)
    images = [p.image for p in prompts] if policy.is_vlm and prompts[0].image is not None else None
    batch = encode(policy, [p.text for p in prompts], images, chat=chat).to(device)
    settings = {**generation_settings(policy), **generate_kwargs}
    out = generate_samples(policy.model, batch, num_samples, settings)
    sequences = out.sequences
    prompt_len = batch["input_ids"].shape[1]
    response = sequences[:, prompt_len:]
    stops = stop_token_ids(policy)
    rmask = response_mask_from(response, stops)
    prompt_mask = batch["attention_mask"].repeat_interleave(num_samples, 0)
    attention = torch.cat([prompt_mask, rmask], dim=1)
    texts, ends = decode_responses(policy.tokenizer, response, rmask, stops)
    rows, aligned = split_rows(batch, len(prompts))
    extra = {
        k: v.repeat_interleave(num_samples, 0) for k, v in extend_aligned(aligned, sequences.shape[1]).items()
    }
    chunk = Chunk(
        input_ids=sequences,
        attention_mask=attention,
        prompt_len=prompt_len,
        response_mask=rmask,
        problems=[p for p in problems for _ in range(num_samples)],
        texts=texts,
        token_char_ends=ends,
        vision=[row for row in rows for _ in range(num_samples)] if any(rows) else [],
        extra=extra,
    )
    if getattr(out, "logits", None):
        logits = torch.stack(out.logits, dim=1).float()
        chunk.generation_logp = (
            torch.log_softmax(logits, -1).gather(-1, response.unsqueeze(-1)).squeeze(-1) * rmask
        )
    return chunk
