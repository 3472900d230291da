"""Normality guidance as a rollout-side component: reward bonus per step, critic loss per minibatch.

A PPO trainer with a :class:`~control.algos.ndppo_critic.QuantileCritic` calls, per vector-env step,
:meth:`NormalityGuidance.bonus` (added to the env reward) and :meth:`NormalityGuidance.observe` (with the
rewards it stores; returns each transition's step-in-episode index to store beside them), and
:meth:`NormalityGuidance.critic_loss` in its update epochs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from control.algos.ndppo_bonus import NumpyBonus, std_schedule
from control.algos.ndppo_critic import CRITIC_MODES, QuantileCritic, quantile_critic_loss
from control.algos.ndppo_tracker import EpisodeClock
from control.losses.distributional import quantile_fractions, standard_normal_quantiles

__all__ = ["NormalityGuidanceSettings", "NormalityGuidance"]


@dataclass
class NormalityGuidanceSettings:
    """Settings of the normality-guided (``critic_mode="normal"``) or plain quantile (``"quantile"``) critic."""

    num_quantiles: int = field(default=8, metadata={"help": "Critic quantile outputs N (tau_i = i/(N+1))."})
    critic_mode: str = field(
        default="normal",
        metadata={
            "help": "'normal': regress to normal quantile bars (paper); 'quantile': plain QR baseline."
        },
    )
    bonus: bool = field(default=True, metadata={"help": "Add the normality exploration bonus to rewards."})
    bonus_coef: float = field(default=0.05, metadata={"help": "Bonus coefficient (paper: 0.05)."})
    fallback_bonus: float = field(
        default=0.0, metadata={"help": "Bonus used where the learned quantiles cross (not monotone)."}
    )
    min_std: float = field(
        default=0.1,
        metadata={"help": "sigma_min, floor of the return std schedule (in normalised-reward units)."},
    )
    return_window: int = field(
        default=50, metadata={"help": "Recent episodes for sigma_0^2 and mean length L (paper: 50)."}
    )
    kappa: float = field(default=1.0, metadata={"help": "Quantile Huber threshold kappa (paper: 1)."})
    sort_quantiles: bool = field(
        default=False, metadata={"help": "Sort critic outputs so quantiles never cross (paper: no)."}
    )

    def __post_init__(self) -> None:
        if self.critic_mode not in CRITIC_MODES:
            raise ValueError(f"critic_mode must be one of {CRITIC_MODES}, got {self.critic_mode!r}")
        if self.num_quantiles < 2 or self.num_quantiles % 2:
            raise ValueError(
                f"num_quantiles must be even and >= 2 (tau = 0.5 has z = 0), got {self.num_quantiles}"
            )
        if self.bonus and self.critic_mode != "normal":
            raise ValueError(
                "bonus=True needs critic_mode='normal' (the bonus measures distance to the normal)"
            )


class NormalityGuidance:
    """Couples the episode clock, the std schedule, the bonus and the critic loss for one training run."""

    def __init__(self, settings: NormalityGuidanceSettings, critic: QuantileCritic, num_envs: int) -> None:
        self.settings = settings
        self.critic = critic
        self.clock = EpisodeClock(num_envs, window=settings.return_window, min_std=settings.min_std)
        self.numpy_bonus = NumpyBonus(critic, settings.bonus_coef, settings.fallback_bonus)

    def bonus(self, obs: np.ndarray | torch.Tensor) -> np.ndarray:
        """Bonus per env for acting from ``obs`` now (before :meth:`observe` of this step); zeros when off.
        Computed in numpy (:mod:`control.algos.ndppo_bonus`, the same values as `exploration_bonus`).

        The bonus is scale-free (it depends on ``sigma_hat / sigma_t`` only), so the trainer adds it to the raw
        env reward, before any reward normalisation, as the paper adds ``0.05 * bonus`` to the env reward.
        """
        if not self.settings.bonus:
            return np.zeros(len(self.clock.steps))
        clock = self.clock
        sigma = std_schedule(clock.steps, clock.initial_variance(), clock.min_std, clock.mean_length())
        return self.numpy_bonus(np.asarray(obs), sigma).astype(np.float64)

    def critic_changed(self) -> None:
        """The critic's weights changed (an update): the per-step bonus copies them again."""
        self.numpy_bonus.refresh()

    def observe(self, rewards: np.ndarray, done: np.ndarray) -> np.ndarray:
        """Record the rewards the critic learns from (as stored for GAE); returns each step's index in its episode."""
        return self.clock.observe(np.asarray(rewards, dtype=np.float64), np.asarray(done, dtype=bool))

    def critic_inputs(self, step_idx: torch.Tensor) -> dict[str, torch.Tensor]:
        """What the critic loss needs per sample beside the critic's output and the return: in ``"normal"``
        mode ``target_std``, sigma_t of the current schedule at each sample's step in its episode."""
        if self.settings.critic_mode != "normal":
            return {}
        return {"target_std": self.clock.std(step_idx).to(torch.float32)}

    def critic_loss_from(
        self, quantiles: torch.Tensor, returns: torch.Tensor, inputs: dict[str, torch.Tensor]
    ) -> torch.Tensor:
        """Quantile critic loss of the critic's output on a minibatch, given its rows of :meth:`critic_inputs`
        (a pure function: the compiled update traces it, so the fractions are made here, not read from the
        critic's buffers; they are the same values)."""
        n = quantiles.shape[-1]
        return quantile_critic_loss(
            quantiles,
            returns,
            inputs.get("target_std"),
            quantile_fractions(n, quantiles.dtype),
            standard_normal_quantiles(n, quantiles.dtype),
            mode=self.settings.critic_mode,
            kappa=self.settings.kappa,
        )

    def critic_loss(self, obs: torch.Tensor, returns: torch.Tensor, step_idx: torch.Tensor) -> torch.Tensor:
        """Quantile critic loss on a minibatch (bars from the current schedule in ``"normal"`` mode)."""
        inputs = {k: v.to(returns.dtype) for k, v in self.critic_inputs(step_idx).items()}
        return self.critic_loss_from(self.critic(obs), returns, inputs)
