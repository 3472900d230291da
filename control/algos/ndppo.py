"""Normality-guided distributional PPO (Byun & Perrault, arXiv 2208.13125) and the plain quantile-critic PPO.

Registered as ``--algo ndppo`` (normal quantile bars + exploration bonus), ``ndppo-nobonus`` (bars, no bonus)
and ``qppo`` (quantile critic regressed to sampled returns: the baseline). PPO's loop of :mod:`control.train`
with three hooks (:class:`NormalityHooks`): the critic is a :class:`QuantileCritic` (value = mean quantile), the
env rewards carry the normality bonus (added before reward normalisation), and the critic loss is the quantile
Huber loss of :class:`NormalityGuidance`, with each step's index in its episode kept beside the rollout. The
critic loss is a pure function of the critic's output (``critic_loss_from``), so the loop's compiled update
covers these algorithms as it does PPO.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import torch

from align.user_errors import UserError
from control.algo_names import BUILTIN_ALGORITHMS
from control.algos.ndppo_critic import QuantileCritic
from control.algos.ndppo_guidance import NormalityGuidance, NormalityGuidanceSettings
from control.algos.registry import Algorithm, register
from control.device import resolve_device
from control.hooks import LoopContext, LoopHooks, Minibatch, StepRecord
from control.losses.policy import ppo_loss

__all__ = ["VARIANTS", "NormalityHooks"]

VARIANTS: dict[str, NormalityGuidanceSettings] = {
    "ndppo": NormalityGuidanceSettings(critic_mode="normal", bonus=True),
    "ndppo-nobonus": NormalityGuidanceSettings(critic_mode="normal", bonus=False),
    "qppo": NormalityGuidanceSettings(critic_mode="quantile", bonus=False),
}


class NormalityHooks(LoopHooks):
    """The quantile critic, the normality bonus and the step-in-episode records for the shared loop."""

    def __init__(self, settings: NormalityGuidanceSettings) -> None:
        self.settings = settings
        self.guidance: NormalityGuidance | None = None
        self.bonus_sum, self.bonus_count = 0.0, 0

    def config_extra(self) -> dict[str, Any]:
        return {"normality": dataclasses.asdict(self.settings)}

    def setup(self, ctx: LoopContext) -> None:
        cfg, obs_shape = ctx.cfg, ctx.envs.single_observation_space.shape
        if len(obs_shape) != 1:
            raise UserError(
                f"{cfg.algo} supports vector observations only; {cfg.env_id} has shape {obs_shape}"
            )
        if resolve_device(cfg.device, image_obs=False).type != "cpu":
            raise UserError(f"{cfg.algo} runs on the CPU (small MLPs); set --device cpu or auto")
        s = self.settings
        self.critic = QuantileCritic(obs_shape[0], s.num_quantiles, cfg.hidden[0], s.sort_quantiles)
        self.guidance = NormalityGuidance(s, self.critic, cfg.num_envs)

    def reward_term(self, step: StepRecord) -> np.ndarray:
        bonus = self.guidance.bonus(step.obs)
        self.bonus_sum, self.bonus_count = self.bonus_sum + float(bonus.sum()), self.bonus_count + len(bonus)
        return bonus

    def after_update(self) -> None:
        self.guidance.critic_changed()

    def observe(self, reward: np.ndarray, done: np.ndarray) -> dict[str, np.ndarray]:
        return {"step_in_episode": self.guidance.observe(reward, done)}

    def critic_loss(self, mb: Minibatch) -> torch.Tensor:
        return self.guidance.critic_loss(mb.obs, mb.returns, mb.extras["step_in_episode"])

    def critic_loss_inputs(self, extras: dict[str, torch.Tensor], size: int) -> dict[str, torch.Tensor]:
        # before the first rollout (preparing the compiled update) only the shapes matter
        steps = extras.get("step_in_episode", torch.zeros(size, dtype=torch.int64))
        return self.guidance.critic_inputs(steps)

    def critic_loss_from(
        self, output: torch.Tensor, returns: torch.Tensor, inputs: dict[str, torch.Tensor]
    ) -> torch.Tensor:
        return self.guidance.critic_loss_from(output, returns, inputs)

    def logs(self) -> dict[str, float]:
        clock = self.guidance.clock
        bonus_mean = self.bonus_sum / max(self.bonus_count, 1)
        self.bonus_sum, self.bonus_count = 0.0, 0
        return {
            "normality/bonus_mean": bonus_mean,
            "normality/sigma_0": clock.initial_variance() ** 0.5,
            "normality/mean_episode_length": clock.mean_length(),
        }

    def state_dict(self) -> dict[str, Any]:
        return {"clock": self.guidance.clock.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state:
            self.guidance.clock.load_state_dict(state["clock"])


for _name in VARIANTS:
    register(
        Algorithm(
            _name,
            "ppo",
            lambda x, c: ppo_loss(x.log_prob, x.old_log_prob, x.advantages, c.clip_coef),
            description=BUILTIN_ALGORITHMS[_name],
            hooks=lambda cfg: NormalityHooks(VARIANTS[cfg.algo]),
        )
    )
