"""What the diffusion RL trainer needs from a use case: the denoiser's calling convention, prompts, the
reward, and (for DLPO's diffusion loss) real data. A denoiser takes float32 x_t (and conditioning) whatever
dtype its weights are in, and its prediction is used in float32 (step means, log-probs, KL and losses)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

# prompts -> (cond passed to the denoiser, shape of x for these prompts); called without grad at sampling time,
# so anything random (e.g. predicted durations) is fixed here and reused when the step is re-scored.
Prepare = Callable[[nn.Module, list[Any]], tuple[Any, tuple[int, ...]]]
# (x_0 samples, prompts, cond) -> one reward per sample
RewardFn = Callable[[torch.Tensor, list[Any], Any], torch.Tensor]
# real items -> (x_0, cond), for the diffusion loss
PrepareData = Callable[[nn.Module, list[Any]], tuple[torch.Tensor, Any]]


@dataclass
class DiffusionTask:
    """Prompts to sample for, how to turn them into conditioning, the reward, and optional real data.

    Without `data` the diffusion loss is taken on the rollout's own samples (detached), which keeps the model
    near what it generates; with data it is the pretraining loss on real examples, as in DLPO."""

    prompts: Sequence[Any]
    prepare: Prepare
    reward_fn: RewardFn
    data: Sequence[Any] | None = None
    prepare_data: PrepareData | None = None

    def __post_init__(self) -> None:
        if len(self.prompts) == 0:
            raise ValueError("DiffusionTask needs at least one prompt")
        if self.data is not None and self.prepare_data is None:
            raise ValueError("DiffusionTask: data given without prepare_data")


class UNetDenoiser(nn.Module):
    """Adapts a diffusers `UNet1DModel`/`UNet2DModel` to eps(x_t, t, cond): cond, when not None, goes in as
    `class_labels` (for a class-conditional UNet2DModel). x_t goes in in the UNet's weight dtype (bf16 under
    DeepSpeed's bf16 engine), the prediction comes out in float32."""

    def __init__(self, unet: nn.Module):
        super().__init__()
        self.unet = unet

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, cond: Any = None) -> torch.Tensor:
        x_t = x_t.to(next(self.unet.parameters()).dtype)
        if cond is None:
            return self.unet(x_t, t).sample.float()
        return self.unet(x_t, t, class_labels=cond).sample.float()
