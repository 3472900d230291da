"""Rollouts for token-level PPO: sample responses, mark response tokens, and compute per-token log-probs
and values with one forward pass of the policy."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from align.data.prompts import build_prompt
from align.models.inputs import encode
from align.models.loading import LoadedPolicy


class ValueHead(nn.Module):
    """A two-layer MLP on the last hidden state: V(s_t) for every position."""

    def __init__(self, hidden_size: int, width: int = 0):
        super().__init__()
        width = width or hidden_size
        self.net = nn.Sequential(nn.Linear(hidden_size, width), nn.Tanh(), nn.Linear(width, 1))

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.net(hidden.float()).squeeze(-1)


@dataclass
class Chunk:
    """A homogeneous group of rollout sequences (all with images or all without), `prompt_len` columns of
    left-padded prompt followed by the response."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    prompt_len: int
    response_mask: torch.Tensor
    problems: list[Any]
    texts: list[str]
    token_char_ends: list[list[int]]
    pixel_values: torch.Tensor | None = None
    extra: dict[str, torch.Tensor] = field(default_factory=dict)
    old_logp: torch.Tensor | None = None
    ref_logp: torch.Tensor | None = None
    values: torch.Tensor | None = None
    rewards: torch.Tensor | None = None
    kl: torch.Tensor | None = None
    advantages: torch.Tensor | None = None
    returns: torch.Tensor | None = None
    score_rewards: torch.Tensor | None = None

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
            pixel_values=self.pixel_values[rows] if self.pixel_values is not None else None,
            extra={k: v[rows] for k, v in self.extra.items()},
            **picked,
        )


def response_mask_from(response_ids: torch.Tensor, eos_id: int, pad_id: int) -> torch.Tensor:
    """1 for response tokens up to and including the first EOS; 0 after it."""
    is_eos = response_ids == eos_id
    after_eos = (is_eos.cumsum(1) - is_eos.long()) > 0
    mask = ~after_eos
    if pad_id != eos_id:
        mask &= response_ids != pad_id
    return mask.long()


def char_ends(tokenizer: Any, ids: list[int]) -> tuple[str, list[int]]:
    """The decoded response and, for each token, the length of the text decoded from tokens 0..i."""
    ends, text = [], ""
    for i in range(len(ids)):
        text = tokenizer.decode(ids[: i + 1], skip_special_tokens=True)
        ends.append(len(text))
    return text, ends


@torch.no_grad()
def sample_chunk(
    policy: LoadedPolicy,
    problems: list[Any],
    num_samples: int,
    generate_kwargs: dict[str, Any],
    fmt: str = "QCM-E",
) -> Chunk:
    """Sample `num_samples` responses per problem (all problems with images, or all without)."""
    device = next(policy.model.parameters()).device
    images = [p.image for p in problems] if policy.is_vlm and problems[0].image is not None else None
    batch = encode(policy, [build_prompt(p, fmt) for p in problems], images).to(device)
    model = policy.model
    out = model.generate(
        **batch,
        num_return_sequences=num_samples,
        pad_token_id=policy.tokenizer.pad_token_id,
        eos_token_id=policy.tokenizer.eos_token_id,
        **generate_kwargs,
    )
    prompt_len = batch["input_ids"].shape[1]
    response = out[:, prompt_len:]
    rmask = response_mask_from(response, policy.tokenizer.eos_token_id, policy.tokenizer.pad_token_id)
    prompt_mask = batch["attention_mask"].repeat_interleave(num_samples, 0)
    attention = torch.cat([prompt_mask, rmask], dim=1)
    texts, ends = [], []
    for row, m in zip(response.tolist(), rmask.tolist(), strict=True):
        n = sum(m)
        text, e = char_ends(policy.tokenizer, row[:n])
        texts.append(text)
        ends.append(e + [len(text)] * (len(row) - n))
    pixel_values = batch.get("pixel_values")
    extra = {
        k: v.repeat_interleave(num_samples, 0)
        for k, v in batch.items()
        if k not in ("input_ids", "attention_mask", "pixel_values") and torch.is_tensor(v)
    }
    return Chunk(
        input_ids=out,
        attention_mask=attention,
        prompt_len=prompt_len,
        response_mask=rmask,
        problems=[p for p in problems for _ in range(num_samples)],
        texts=texts,
        token_char_ends=ends,
        pixel_values=pixel_values.repeat_interleave(num_samples, 0) if pixel_values is not None else None,
        extra=extra,
    )


def forward_tokens(
    model: nn.Module, value_head: nn.Module | None, chunk: Chunk, with_logits: bool = False
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """(log-probs of the response tokens, values before each response token, response logits if asked)."""
    kwargs = {"input_ids": chunk.input_ids, "attention_mask": chunk.attention_mask, **chunk.extra}
    if chunk.pixel_values is not None:
        kwargs["pixel_values"] = chunk.pixel_values
    out = model(**kwargs, output_hidden_states=value_head is not None, use_cache=False)
    start = chunk.prompt_len - 1
    logits = out.logits[:, start:-1].float()
    targets = chunk.input_ids[:, chunk.prompt_len :]
    logp = torch.log_softmax(logits, dim=-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    values = value_head(out.hidden_states[-1][:, start:-1]) if value_head is not None else None
    return logp, values, logits if with_logits else None
