"""Activation checkpointing of the PPO forward that keeps the shared-prompt KV cache.

Transformers' gradient checkpointing turns the KV cache off (a layer recomputed in the backward would write its
cache a second time), but the PPO forward (`align.trainers.scoring`) runs each distinct prompt once and lets its
samples' response tokens attend to that prompt's cached keys and values. Here the two caches of that forward
are made safe to recompute instead: the prompt pass's cache (`PromptCache`) *sets* each layer's states, so a
replay sets the same ones, and the response pass's cache (`SharedPrefixCache`) only *reads* them: it gathers a
layer's prompt states for its rows inside that layer and stores nothing, so a replay reads what the forward
read, and no pass ever holds every layer's gathered copy at once. The decoder layers then run under
`torch.utils.checkpoint` (non-reentrant), which recomputes the same values in the backward on CPU and GPU alike
(no dropout: PPO keeps the model in eval mode), so losses, gradients and the first ratio do not change.

Modes (`PPOConfig.activation_checkpointing`):
- "full": a layer keeps only its inputs; the backward runs its forward again.
- "selective": a layer keeps the outputs of its matrix products and of attention; the backward recomputes the
  element-wise work between them (norms, rotary embeddings, activations, the gathered prompt states). PyTorch's
  selective checkpointing replays the forward op by op, which state outside the layer breaks (autocast's weight
  cast cache when a layer runs twice in a forward, as the shared-prompt path does; DeepSpeed ZeRO-3's parameter
  gathering), so under autocast or ZeRO-3 "selective" checkpoints as "full".
- "none": every activation is kept between the forward and the backward.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn
from torch.utils.checkpoint import CheckpointPolicy, checkpoint, create_selective_checkpoint_contexts
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer
from transformers.modeling_layers import GradientCheckpointingLayer

CHECKPOINTING_MODES = ("none", "selective", "full")

_aten = torch.ops.aten
# ops whose outputs a "selective" layer keeps: the matrix products and attention (the costly work)
_KEPT_OPS = {
    _aten.mm.default,
    _aten.addmm.default,
    _aten.bmm.default,
    _aten.baddbmm.default,
    _aten._scaled_dot_product_flash_attention_for_cpu.default,
    _aten._scaled_dot_product_flash_attention.default,
    _aten._scaled_dot_product_efficient_attention.default,
    _aten._scaled_dot_product_cudnn_attention.default,
}


class PromptCache(DynamicCache):
    """The KV cache of one forward over whole prompts, from empty: `update` sets a layer's states instead of
    appending them, so a layer recomputed in the backward sets the same states again."""

    def update(
        self, key_states: torch.Tensor, value_states: torch.Tensor, layer_idx: int, *args: Any, **kwargs: Any
    ) -> tuple[torch.Tensor, torch.Tensor]:
        while len(self.layers) <= layer_idx:
            self.layers.append(DynamicLayer())
        layer = self.layers[layer_idx]
        if not layer.is_initialized:
            layer.lazy_initialization(key_states, value_states)
        layer.keys, layer.values = key_states, value_states
        return key_states, value_states


class SharedPrefixCache(DynamicCache):
    """Read-only: the states of distinct prompts (a filled `PromptCache`) served to the rows that share them
    (`index[row]` is a row's prompt) for one forward over the tokens after the prompts. `update` returns the
    prompt's states gathered for the rows followed by the new states, and stores nothing."""

    def __init__(self, prompts: DynamicCache, index: torch.Tensor):
        super().__init__()
        layers = []
        for source in prompts.layers:
            layer = DynamicLayer()
            layer.lazy_initialization(source.keys, source.values)
            layer.keys, layer.values = source.keys, source.values  # own references: a replay of the
            layers.append(layer)  # prompt pass may set new (equal) states in `prompts`
        self.layers, self.layer_class_to_replicate, self.index = layers, None, index

    def update(
        self, key_states: torch.Tensor, value_states: torch.Tensor, layer_idx: int, *args: Any, **kwargs: Any
    ) -> tuple[torch.Tensor, torch.Tensor]:
        layer = self.layers[layer_idx]
        keys = torch.cat([layer.keys[self.index], key_states], dim=-2)
        values = torch.cat([layer.values[self.index], value_states], dim=-2)
        return keys, values


def _keep_products(_ctx: Any, op: Any, *_args: Any, **_kwargs: Any) -> CheckpointPolicy:
    return CheckpointPolicy.MUST_SAVE if op in _KEPT_OPS else CheckpointPolicy.PREFER_RECOMPUTE


def _checkpointed(forward: Any, mode: str, *args: Any, **kwargs: Any) -> Any:
    if mode == "selective":
        context_fn = functools.partial(create_selective_checkpoint_contexts, _keep_products)
        return checkpoint(forward, *args, use_reentrant=False, context_fn=context_fn, **kwargs)
    return checkpoint(forward, *args, use_reentrant=False, **kwargs)


def checkpointable_layers(model: nn.Module) -> list[nn.Module]:
    """The outermost transformers layers (`GradientCheckpointingLayer`: decoder layers, vision-tower layers)
    inside `model`; a model without them gets no checkpointing."""
    layers, prefixes = [], []
    for name, module in model.named_modules():
        if isinstance(module, GradientCheckpointingLayer) and not any(name.startswith(p) for p in prefixes):
            layers.append(module)
            prefixes.append(name + ".")
    return layers


def _replayable(model: nn.Module) -> bool:
    """Whether selective checkpointing can replay the forward op by op: no autocast (its cache of weight casts
    makes a replay cast again what the forward took from the cache) and no ZeRO-3 partitioned weights."""
    autocast = any(torch.is_autocast_enabled(device) for device in ("cpu", "cuda"))
    return not autocast and not any(hasattr(p, "ds_id") for p in model.parameters())


@contextmanager
def checkpointed_layers(model: nn.Module, mode: str) -> Iterator[None]:
    """Forwards of `model` made inside the context (with gradients) checkpoint each layer in `mode`; the
    backward, whenever it runs, recomputes what the layer did not keep."""
    if mode not in CHECKPOINTING_MODES:
        raise ValueError(f"activation_checkpointing must be one of {CHECKPOINTING_MODES}, got {mode!r}")
    if mode == "none" or not torch.is_grad_enabled():
        yield
        return
    if mode == "selective" and not _replayable(model):
        mode = "full"
    patched = []
    for layer in checkpointable_layers(model):
        own = layer.__dict__.get("forward")  # an instance-level forward (accelerate's hooks) stays inside
        layer.forward = functools.partial(_checkpointed, layer.forward, mode)
        patched.append((layer, own))
    try:
        yield
    finally:
        for layer, own in patched:
            if own is None:
                del layer.forward
            else:
                layer.forward = own
