"""Registers ``--algo ppg``: PPO's update loop with the Proximal Policy Gradient loss (Byun, Kim & Wang 2020).

Not OpenAI's Phasic Policy Gradient. The loss and its clipping region are in :mod:`control.losses.ppg`.
"""

from __future__ import annotations

from control.algo_names import BUILTIN_ALGORITHMS
from control.algos.registry import Algorithm, register
from control.losses.ppg import ppg_policy_loss

PPG = register(
    Algorithm(
        "ppg",
        "ppo",
        lambda x, c: ppg_policy_loss(x.log_prob, x.old_log_prob, x.advantages, c.clip_coef),
        description=BUILTIN_ALGORITHMS["ppg"],
    )
)
