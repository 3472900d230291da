"""The forward pass PPO trains with: per-token log-probs of the sampled response tokens, the value before each
of them, and (for the update) the response logits.

It does only the work PPO uses:
- the value head reads the decoder's last hidden state, taken from the trunk's output (no tuple of every
  layer's hidden states);
- the LM head runs on the response positions only (`logits_to_keep`), and a sampled token's log-prob is its
  logit minus the log-sum-exp over the vocabulary (no full log-softmax tensor);
- rows that share a prompt (the k samples of a problem) run that prompt once: each distinct prompt's KV
  cache is computed once and gathered for its rows, and only the response tokens run over it (text-only
  models; VLM batches, whose positions and image features are family-specific, take one full pass).
The same rows always take the same path, so old log-probs and the first update epoch's agree bit for bit.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from align.models.inputs import position_ids_from_mask
from align.models.vision_inputs import join_rows

if TYPE_CHECKING:
    from align.trainers.rollout import Chunk

# Batches carrying these keys get M-RoPE positions (Qwen2-VL family) that the model computes itself from the
# attention mask, as its generate() does; every other model gets positions from the attention mask here.
MROPE_KEYS = ("image_grid_thw", "video_grid_thw")


class ValueHead(nn.Module):
    """A two-layer MLP on the last hidden state: V(s_t) for every position. Its output layer starts at
    zero, so an untrained head predicts 0 and early advantages are the rewards themselves, not noise that
    whitening would blow up to unit size. It runs in its own weights' dtype (bf16 when DeepSpeed's bf16 engine
    cast them) and returns float32 values, whatever dtype the trunk's hidden states come in."""

    def __init__(self, hidden_size: int, width: int = 0):
        super().__init__()
        width = width or hidden_size
        self.net = nn.Sequential(nn.Linear(hidden_size, width), nn.Tanh(), nn.Linear(width, 1))
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.net(hidden.to(self.net[0].weight.dtype)).squeeze(-1).float()


class PolicyWithValue(nn.Module):
    """The policy and its value head as one module, so that DDP and DeepSpeed wrap (and shard, and
    checkpoint) them as one engine with one optimizer. Its forward is `score_responses`."""

    def __init__(self, policy: nn.Module, value_head: ValueHead):
        super().__init__()
        self.policy, self.value_head = policy, value_head

    @property
    def is_gradient_checkpointing(self) -> bool:
        return bool(getattr(self.policy, "is_gradient_checkpointing", False))

    def gradient_checkpointing_enable(self, **kwargs: Any) -> None:
        self.policy.gradient_checkpointing_enable(**kwargs)

    def gradient_checkpointing_disable(self) -> None:
        self.policy.gradient_checkpointing_disable()

    def forward(self, **kwargs: Any) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        return score_responses(self.policy, self.value_head, **kwargs)


def unwrap(model: nn.Module) -> nn.Module:
    """The module inside DDP/DeepSpeed wrappers."""
    while hasattr(model, "module"):
        model = model.module
    return model


def base_model(model: nn.Module) -> nn.Module:
    """The transformers model inside DDP/DeepSpeed wrappers, our `PolicyWithValue` and a peft adapter."""
    model = unwrap(model)
    if isinstance(model, PolicyWithValue):
        model = model.policy
    if hasattr(model, "get_base_model"):
        model = model.get_base_model()
    return model


def _forward_parameters(model: nn.Module) -> Any:
    return inspect.signature(base_model(model).forward).parameters


def accepts_position_ids(model: nn.Module) -> bool:
    return "position_ids" in _forward_parameters(model)


def shares_prompts(model: nn.Module) -> bool:
    """Whether rows with the same prompt may run it once: text-only transformers models (their positions
    come from the attention mask and their cache is the standard one)."""
    config = getattr(base_model(model), "config", None)
    return config is not None and not hasattr(config, "vision_config") and accepts_position_ids(model)


@contextmanager
def last_hidden_state(model: nn.Module, wanted: bool = True) -> Iterator[list[torch.Tensor]]:
    """Collects the decoder trunk's output (the last hidden state, after the final norm) of every forward
    call of `model` made inside the context."""
    captured: list[torch.Tensor] = []
    if not wanted:
        yield captured
        return
    trunk = base_model(model).base_model

    def keep(_module: nn.Module, _args: Any, output: Any) -> None:
        captured.append(output[0])

    handle = trunk.register_forward_hook(keep)
    try:
        yield captured
    finally:
        handle.remove()


def token_logprobs(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """log softmax(logits)[target] as logit[target] - logsumexp(logits), in float32, without materialising
    the log-softmax over the vocabulary."""
    logits = logits.float()
    return logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1) - torch.logsumexp(logits, dim=-1)


def distinct_prompts(
    prompt_ids: torch.Tensor, prompt_mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(first row of each distinct prompt, index of each row's prompt among them), prompts in first-seen order."""
    _, inverse = torch.unique(torch.cat([prompt_ids, prompt_mask], 1), dim=0, return_inverse=True)
    order = {}
    for row, key in enumerate(inverse.tolist()):
        order.setdefault(key, row)
    first = torch.tensor(list(order.values()), device=prompt_ids.device)
    rank = {key: i for i, key in enumerate(order)}
    index = torch.tensor([rank[k] for k in inverse.tolist()], device=prompt_ids.device)
    return first, index


def _new_cache() -> Any:
    from transformers import DynamicCache

    return DynamicCache()


def _cache_name(model: nn.Module) -> str:
    return "cache" if "cache" in _forward_parameters(model) else "past_key_values"


def score_responses(
    model: nn.Module,
    value_head: ValueHead | None,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    prompt_len: int,
    with_values: bool = False,
    with_logits: bool = False,
    detach_values: bool = False,
    **inputs: Any,
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """(log-probs of the response tokens, values before each response token, response logits if asked) of
    `prompt_len` columns of left-padded prompt followed by the response. `model` is a transformers or peft
    model (or an engine wrapping one); values need `value_head`. `inputs` are the model's other inputs
    (image inputs, token-aligned tensors)."""
    if with_values and value_head is None:
        raise ValueError("values need a PolicyWithValue model")
    mrope = any(k in inputs for k in MROPE_KEYS)
    first, prompt_index = None, None
    if not inputs and shares_prompts(model):
        first, prompt_index = distinct_prompts(input_ids[:, :prompt_len], attention_mask[:, :prompt_len])
        if len(first) == len(input_ids) or prompt_len < 1:
            first = None
    with last_hidden_state(model, with_values) as hidden:
        if first is None:
            logits = _full_pass(model, input_ids, attention_mask, prompt_len, mrope, inputs)
        else:
            logits = _shared_prompt_pass(model, input_ids, attention_mask, prompt_len, first, prompt_index)
    targets = input_ids[:, prompt_len:]
    logp = token_logprobs(logits, targets)
    values = None
    if with_values:
        if first is None:
            states = hidden[0][:, prompt_len - 1 : -1]
        else:
            states = torch.cat([hidden[0][:, -1:][prompt_index]] + hidden[1:], 1)
        values = value_head(states.detach() if detach_values else states)
    return logp, values, logits if with_logits else None


def _positions(start: int, end: int, device: torch.device) -> torch.Tensor:
    """`logits_to_keep` as explicit positions: the LM head then reads a contiguous copy of those hidden
    states, so its matmul takes the same kernel whether or not the weights require grad (a frozen reference
    copy then computes exactly what the policy computes)."""
    return torch.arange(start, end, device=device)


def _full_pass(
    model: nn.Module,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    prompt_len: int,
    mrope: bool,
    inputs: dict[str, Any],
) -> torch.Tensor:
    """One forward over whole sequences; the LM head over the response positions only."""
    kwargs = {"input_ids": input_ids, "attention_mask": attention_mask, **inputs}
    if accepts_position_ids(model) and not mrope:
        kwargs["position_ids"] = position_ids_from_mask(attention_mask)
    length = input_ids.shape[1]
    if "logits_to_keep" not in _forward_parameters(model):
        return model(**kwargs, use_cache=False).logits[:, prompt_len - 1 : -1]
    kwargs["logits_to_keep"] = _positions(prompt_len - 1, length - 1, input_ids.device)
    return model(**kwargs, use_cache=False).logits


def prompt_cache(model: nn.Module, ids: torch.Tensor, mask: torch.Tensor) -> tuple[str, Any, torch.Tensor]:
    """(the model's cache argument name, a KV cache of left-padded prompts, the logits at their last
    position)."""
    name, cache = _cache_name(model), _new_cache()
    out = model(
        input_ids=ids,
        attention_mask=mask,
        position_ids=position_ids_from_mask(mask),
        use_cache=True,
        logits_to_keep=_positions(ids.shape[1] - 1, ids.shape[1], ids.device),
        **{name: cache},
    )
    return name, cache, out.logits


def _shared_prompt_pass(
    model: nn.Module,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    prompt_len: int,
    first: torch.Tensor,
    prompt_index: torch.Tensor,
) -> torch.Tensor:
    """Each distinct prompt once (its KV cache gathered for its rows), then the response tokens over it."""
    name, cache, prompt_logits = prompt_cache(
        model, input_ids[first, :prompt_len], attention_mask[first, :prompt_len]
    )
    logits = [prompt_logits[prompt_index]]
    if input_ids.shape[1] - prompt_len > 1:  # the response tokens but the last one
        cache.batch_select_indices(prompt_index)
        mask = attention_mask[:, :-1]
        out = model(
            input_ids=input_ids[:, prompt_len:-1],
            attention_mask=mask,
            position_ids=position_ids_from_mask(mask)[:, prompt_len:],
            use_cache=True,
            **{name: cache},
        )
        logits.append(out.logits)
    return torch.cat(logits, 1)


def forward_tokens(
    model: nn.Module,
    chunk: Chunk,
    with_values: bool = False,
    with_logits: bool = False,
    detach_values: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """(log-probs of the response tokens, values before each response token, response logits if asked).

    `model` is a transformers/peft model, or a `PolicyWithValue` (possibly inside DDP/DeepSpeed), which
    values need. Every model but the M-RoPE family gets positions counted from the attention mask, as in
    `generate()`, so that training scores the tokens exactly as sampling did (GPT-2 with left padding).
    """
    kwargs = {
        "input_ids": chunk.input_ids,
        "attention_mask": chunk.attention_mask,
        "prompt_len": chunk.prompt_len,
        "with_values": with_values,
        "with_logits": with_logits,
        "detach_values": detach_values,
        **chunk.extra,
        **join_rows(chunk.vision),
    }
    if isinstance(unwrap(model), PolicyWithValue):
        return model(**kwargs)
    return score_responses(model, None, **kwargs)
