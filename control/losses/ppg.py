"""Proximal Policy Gradient (PPG) policy loss (Byun, Kim & Wang 2020, arXiv 2010.09933).

Not OpenAI's *Phasic* Policy Gradient, which shares the acronym: nothing here has an auxiliary phase.

PPG replaces PPO's surrogate ``r * A`` (gradient ``r * A * grad log pi``) by an objective whose gradient is the
vanilla policy gradient ``A * grad log pi`` itself, and keeps PPO's idea of stopping a sample once the policy
has moved far enough in the direction its advantage asks, so that several epochs over one batch stay safe.
"""

from __future__ import annotations

import math

import torch

__all__ = ["ppg_objective", "ppg_policy_loss", "ppg_active_mask"]


def ppg_active_mask(ratio: torch.Tensor, advantages: torch.Tensor, clip_eps: float) -> torch.Tensor:
    """Where a sample still contributes gradient: outside the clipping region of the advantage-policy plane.

    A sample is frozen once ``A > 0 and r > 1 + eps`` (its action is already made more likely enough) or
    ``A < 0 and r < 1 - eps`` (already made less likely enough); everywhere else it is active.
    """
    frozen = ((advantages > 0) & (ratio > 1.0 + clip_eps)) | ((advantages < 0) & (ratio < 1.0 - clip_eps))
    return ~frozen


def ppg_objective(
    log_prob: torch.Tensor, old_log_prob: torch.Tensor, advantages: torch.Tensor, clip_eps: float = 0.2
) -> torch.Tensor:
    """Per-sample PPG objective (to maximise), the log-ratio analogue of PPO's clipped surrogate.

    With ``r = pi(a|s) / pi_old(a|s)`` and advantage ``A``::

        L_PPG = min( A * log r,  A * log clip(r, 1 - eps, 1 + eps) )

    ``grad (A * log r) = A * grad log pi``, the vanilla policy-gradient term, at every ``r`` (not only at
    ``r = 1`` as for PPO's ``r * A``). The ``min`` picks the clipped, constant branch exactly in the region
    ``{A > 0, r > 1 + eps} U {A < 0, r < 1 - eps}`` of the advantage-policy plane, where the gradient is zero;
    elsewhere (including ``A > 0, r < 1 - eps`` and ``A < 0, r > 1 + eps``, which the update must undo) the
    full vanilla gradient flows. The paper's exact wording of the region could not be retrieved here; this is
    the natural reading described in docs/control_ppg_ndppo.md.
    """
    if not 0.0 < clip_eps < 1.0:
        raise ValueError(f"PPG clip_eps must lie in (0, 1), got {clip_eps}")
    log_ratio = log_prob - old_log_prob
    clipped_log_ratio = torch.clamp(log_ratio, min=math.log1p(-clip_eps), max=math.log1p(clip_eps))
    return torch.minimum(advantages * log_ratio, advantages * clipped_log_ratio)


def ppg_policy_loss(
    log_prob: torch.Tensor, old_log_prob: torch.Tensor, advantages: torch.Tensor, clip_eps: float = 0.2
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Mean PPG loss (``-L_PPG``, to minimise) and diagnostics (``clip_fraction``, ``approx_kl``)."""
    loss = -ppg_objective(log_prob, old_log_prob, advantages, clip_eps).mean()
    with torch.no_grad():
        log_ratio = log_prob - old_log_prob
        ratio = log_ratio.exp()
        stats = {
            "clip_fraction": (~ppg_active_mask(ratio, advantages, clip_eps)).float().mean(),
            "approx_kl": ((ratio - 1) - log_ratio).mean(),
        }
    return loss, stats
