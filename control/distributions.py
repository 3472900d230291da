"""Closed-form policy distributions as pure functions (diagonal Gaussian, categorical, multi-categorical).

They compute what `torch.distributions.Normal`/`Categorical` compute, without building distribution objects:
on CPU with small networks the objects cost about as much as the network (tests compare the two).
"""

from __future__ import annotations

import math

import torch

HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def gaussian_log_prob(action: torch.Tensor, mean: torch.Tensor, log_std: torch.Tensor) -> torch.Tensor:
    """log N(action; mean, exp(log_std)^2), summed over the last (action) dimension."""
    z = (action - mean) * torch.exp(-log_std)
    return (-0.5 * z.square() - log_std).sum(-1) - HALF_LOG_2PI * action.shape[-1]


def gaussian_entropy(log_std: torch.Tensor, batch: int) -> torch.Tensor:
    """Entropy of a diagonal Gaussian (independent of the mean), repeated for `batch` samples."""
    return (log_std.sum() + log_std.numel() * (0.5 + HALF_LOG_2PI)).expand(batch)


def categorical_terms(
    logits: torch.Tensor, sizes: list[int], action: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(log_prob, entropy) of `action` (batch, len(sizes)) under independent categoricals whose logits are
    `logits` split into chunks of `sizes` along the last dimension; both summed over the chunks."""
    parts = action.long().reshape(action.shape[0], len(sizes))
    log_prob, entropy = 0.0, 0.0
    for i, chunk in enumerate(torch.split(logits, sizes, dim=-1)):
        log_p = torch.log_softmax(chunk, -1)
        log_prob = log_prob + log_p.gather(-1, parts[:, i : i + 1]).squeeze(-1)
        entropy = entropy - (log_p.exp() * log_p).sum(-1)
    return log_prob, entropy


def categorical_sample(logits: torch.Tensor, sizes: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """(sampled action (batch, len(sizes)), greedy action (batch, len(sizes))) with the Gumbel-max trick."""
    samples, greedy = [], []
    for chunk in torch.split(logits, sizes, dim=-1):
        gumbel = -torch.log(-torch.log(torch.rand_like(chunk).clamp_(min=1e-20)))
        samples.append((chunk + gumbel).argmax(-1))
        greedy.append(chunk.argmax(-1))
    return torch.stack(samples, -1), torch.stack(greedy, -1)
