"""Generalised advantage estimation over masked token sequences (any padding side)."""

from __future__ import annotations

from collections.abc import Callable

import torch

from align.rl.masked import masked_whiten


def masked_gae(
    rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float = 1.0, lam: float = 0.95
) -> tuple[torch.Tensor, torch.Tensor]:
    """(advantages, returns) by GAE (Schulman et al., 2016) along the time axis of (B, T) tensors.

    Masked positions are skipped, not treated as terminal: the recursion links each valid token to the next
    valid one, so left padding, right padding and holes give the same result as the packed sequence. The
    value after the last valid token is 0 (the episode ends with the response).
    """
    mask = mask.to(rewards.dtype)
    batch, length = rewards.shape
    advantages = torch.zeros_like(rewards)
    next_value = torch.zeros(batch, dtype=rewards.dtype, device=rewards.device)
    last_gae = torch.zeros_like(next_value)
    for t in reversed(range(length)):
        m = mask[:, t]
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        gae = delta + gamma * lam * last_gae
        advantages[:, t] = gae * m
        last_gae = torch.where(m > 0, gae, last_gae)
        next_value = torch.where(m > 0, values[:, t], next_value)
    returns = (advantages + values) * mask
    return advantages, returns


def whiten_advantages(advantages: torch.Tensor, mask: torch.Tensor, enabled: bool = True) -> torch.Tensor:
    return masked_whiten(advantages, mask) if enabled else advantages * mask


def whiten_across(
    advantages: list[torch.Tensor],
    masks: list[torch.Tensor],
    reduce_sum: Callable[[list[float]], list[float]] | None = None,
    eps: float = 1e-8,
) -> list[torch.Tensor]:
    """Whiten several (B_i, T_i) advantage tensors with one mean and std over all their masked entries, as if
    they were one batch (rollout chunks of different lengths); masked-out entries become 0. `reduce_sum`
    sums the moments (sum, sum of squares, count) over processes, so every rank whitens alike under DDP."""
    flat = [a[m.bool()].double() for a, m in zip(advantages, masks, strict=True)]
    moments = [sum(float(f.sum()) for f in flat), sum(float((f**2).sum()) for f in flat)]
    moments.append(float(sum(f.numel() for f in flat)))
    total, total_sq, n = reduce_sum(moments) if reduce_sum is not None else moments
    if n == 0:
        return [a * m for a, m in zip(advantages, masks, strict=True)]
    mean = total / n
    std = (max(total_sq - n * mean**2, 0.0) / (n - 1)) ** 0.5 if n > 1 else 1.0
    return [(a - mean) / (std + eps) * m for a, m in zip(advantages, masks, strict=True)]
