"""Processor outputs split by row, so that any subset of sequences can be fed back to the model.

VLM processors return image inputs in family-specific layouts: LLaVA one `pixel_values` row per prompt,
Idefics3 a `(batch, images, C, H, W)` block plus `pixel_attention_mask`, Qwen2-VL the patches of *all*
images flattened into one `pixel_values` tensor counted by `image_grid_thw`, plus `mm_token_type_ids`
aligned with the tokens. Rollouts repeat prompts k times and minibatches pick rows, so we keep each row's
image inputs apart and re-join them for a forward pass.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

# Tensors with one entry per token; tokens added after the prompt are text (type 0).
TOKEN_ALIGNED = ("mm_token_type_ids", "token_type_ids")
# Qwen2-VL family: patches of every image in one tensor, split by the product of each image's grid.
FLAT_PATCHES = {"pixel_values": "image_grid_thw", "pixel_values_videos": "video_grid_thw"}
TEXT_KEYS = ("input_ids", "attention_mask")


def split_rows(
    batch: Mapping[str, Any], n_rows: int
) -> tuple[list[dict[str, torch.Tensor]], dict[str, torch.Tensor]]:
    """(each row's image inputs, the token-aligned tensors) of a processor batch with one image per row
    (or none)."""
    rows: list[dict[str, torch.Tensor]] = [{} for _ in range(n_rows)]
    aligned: dict[str, torch.Tensor] = {}
    for key, value in batch.items():
        if key in TEXT_KEYS or not torch.is_tensor(value):
            continue
        if key in TOKEN_ALIGNED:
            aligned[key] = value
            continue
        grid = FLAT_PATCHES.get(key)
        if grid is not None and grid in batch:
            sizes = batch[grid].prod(-1).tolist()
            if len(sizes) != n_rows:
                raise ValueError(f"{grid} lists {len(sizes)} images for {n_rows} prompts; expected one each")
            pieces = value.split(sizes)
        elif value.shape[0] == n_rows:
            pieces = value.split(1)
        else:
            raise ValueError(
                f"processor output {key!r} of shape {tuple(value.shape)} cannot be split into {n_rows} rows"
            )
        for row, piece in zip(rows, pieces, strict=True):
            row[key] = piece
    return rows, aligned


def join_rows(rows: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """The model inputs of several rows' image inputs (concatenated along the first axis)."""
    if not rows or not rows[0]:
        return {}
    return {key: torch.cat([r[key] for r in rows]) for key in rows[0]}


def extend_aligned(aligned: Mapping[str, torch.Tensor], length: int) -> dict[str, torch.Tensor]:
    """Token-aligned tensors padded on the right with zeros (text) to `length` columns."""
    out = {}
    for key, value in aligned.items():
        pad = length - value.shape[-1]
        out[key] = torch.cat([value, value.new_zeros(*value.shape[:-1], pad)], -1) if pad > 0 else value
    return out
