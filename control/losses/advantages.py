"""Generalised advantage estimation over (T, N) rollouts of N vector envs (Schulman et al., 2016)."""

from __future__ import annotations

import numpy as np
import torch


def gae(
    rewards: torch.Tensor,
    values: torch.Tensor,
    dones: torch.Tensor,
    next_value: torch.Tensor,
    next_done: torch.Tensor,
    gamma: float = 0.99,
    lam: float = 0.95,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(advantages, returns). `dones[t]` marks that the observation at t starts a new episode (CleanRL's
    convention); `next_value`/`next_done` are those of the observation after the last step. Truncated
    episodes are bootstrapped by the caller (folding gamma * V(final obs) into the reward)."""
    # A Python loop over time steps: on numpy views it costs ~1 us per step, on torch tensors ~10 us.
    r, v, d = (t.detach().cpu().numpy() for t in (rewards, values, dones))
    nv, nd = next_value.detach().cpu().numpy(), next_done.detach().cpu().numpy()
    steps = r.shape[0]
    advantages = np.zeros_like(r)
    last = np.zeros_like(nv)
    for t in reversed(range(steps)):
        not_done = 1.0 - (nd if t == steps - 1 else d[t + 1])
        following = nv if t == steps - 1 else v[t + 1]
        delta = r[t] + gamma * following * not_done - v[t]
        last = delta + gamma * lam * not_done * last
        advantages[t] = last
    adv = torch.from_numpy(advantages).to(rewards.device)
    return adv, adv + values
