"""Hooks into the shared on-policy loop of :mod:`control.train`: what an algorithm adds to plain PPO/A2C without
copying the loop. A hook object may bring

- a critic that replaces the actor-critic's value head (``critic`` + ``critic_loss``; ND-PPO's quantile critic;
  written as ``critic_loss_inputs`` + ``critic_loss_from``, the update with it can be compiled),
- a reward term added to the env reward before reward normalisation (``reward_term``; ND-PPO's normality bonus,
  the AIRL reward of the transition policies),
- per-step records kept beside the rollout (``observe``), work after each rollout (``after_rollout``; AIRL's
  discriminator update) and after each update (``after_update``), extra loss terms (``extra_loss``), scalars
  to log (``logs``), its own checkpoint state (``state_dict``), and the envs' state on resume
  (``restore_envs``: a run that resumes exactly).

Every method of :class:`LoopHooks` does nothing by default; the loop checks once which ones a subclass overrides,
so plain PPO pays nothing for them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from control.config import TrainConfig
from control.envs import VecNormalize
from control.networks import ActorCritic


@dataclass
class LoopContext:
    """What the loop has built when it calls :meth:`LoopHooks.setup`."""

    cfg: TrainConfig
    envs: gym.vector.VectorEnv
    agent: ActorCritic
    norm: VecNormalize | None
    device: torch.device
    out: Path


@dataclass
class StepRecord:
    """One vector-env step as a reward term sees it (numpy arrays, first axis = env)."""

    obs: np.ndarray  # the policy's input (normalised when normalisation is on)
    raw_obs: np.ndarray  # the env's observation the action was taken from
    action: np.ndarray
    log_prob: np.ndarray  # log pi(a|s) of the sampled action
    raw_next_obs: np.ndarray  # what the env returned: the reset observation where an episode ended
    terminated: np.ndarray
    truncated: np.ndarray
    info: dict[str, Any]

    def true_next_obs(self) -> np.ndarray:
        """s' of each transition: the final observation where an episode ended (same-step autoreset)."""
        nxt = np.array(self.raw_next_obs, copy=True)
        if "final_obs" in self.info:
            for i in np.flatnonzero(np.logical_or(self.terminated, self.truncated)):
                nxt[i] = self.info["final_obs"][i]
        return nxt


@dataclass
class Minibatch:
    """Tensors of one minibatch of the update (``extras``: the records of :meth:`LoopHooks.observe`)."""

    obs: torch.Tensor
    actions: torch.Tensor
    log_prob: torch.Tensor
    old_log_prob: torch.Tensor
    advantages: torch.Tensor
    returns: torch.Tensor
    old_values: torch.Tensor
    extras: dict[str, torch.Tensor] = field(default_factory=dict)


class LoopHooks:
    """Base class: override what the algorithm needs. ``critic`` (set in :meth:`setup`) replaces the agent's
    value head; it must expose ``value(obs) -> (B,)`` and, for the numpy rollout sampler, ``net``: a Linear/Tanh
    ``nn.Sequential`` whose outputs' mean is the value."""

    critic: nn.Module | None = None

    def config_extra(self) -> dict[str, Any]:
        """Written into the run's config.json beside the TrainConfig."""
        return {}

    def setup(self, ctx: LoopContext) -> None:
        """Called once the envs, agent and normaliser exist (before a checkpoint is restored)."""

    def reward_term(self, step: StepRecord) -> np.ndarray | None:
        """Added to the env reward of this step, before reward normalisation."""
        return None

    def observe(self, reward: np.ndarray, done: np.ndarray) -> dict[str, np.ndarray]:
        """Sees the stored (normalised, bootstrapped) reward of each step; returns per-step records to keep."""
        return {}

    def after_rollout(self) -> None:
        """Called after each rollout, before advantages and the update."""

    def critic_loss(self, mb: Minibatch) -> torch.Tensor:
        """Loss of :attr:`critic` on a minibatch (used instead of the core's value loss)."""
        raise NotImplementedError("a hook with a critic must define critic_loss")

    def critic_loss_inputs(
        self, extras: dict[str, torch.Tensor], size: int
    ) -> dict[str, torch.Tensor] | None:
        """For the compiled update: the per-sample tensors, flat over the `size` samples of a rollout (as
        `extras`, the records of :meth:`observe`, which are empty before the first rollout), that
        :meth:`critic_loss_from` needs beside the critic's output and the returns. None (the default): the
        critic loss is not written that way, and the update runs eagerly."""
        return None

    def critic_loss_from(
        self, output: torch.Tensor, returns: torch.Tensor, inputs: dict[str, torch.Tensor]
    ) -> torch.Tensor:
        """The critic loss as a pure function of :attr:`critic`'s output on a minibatch, its returns and its rows
        of :meth:`critic_loss_inputs` (traced into the compiled update; plain tensor ops only)."""
        raise NotImplementedError("a hook with critic_loss_inputs must define critic_loss_from")

    def after_update(self) -> None:
        """Called after each update, once the parameters have changed (e.g. to refresh a copy of the critic)."""

    def extra_loss(self, mb: Minibatch) -> tuple[torch.Tensor, dict[str, float]] | None:
        """A term added to each minibatch's loss, and stats to log."""
        return None

    def logs(self) -> dict[str, float]:
        """Scalars logged after each update."""
        return {}

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass

    def restore_envs(self) -> tuple[np.ndarray, np.ndarray] | None:
        """On resume (after :meth:`load_state_dict`): put the envs back where the checkpoint left them and return
        (raw observations, dones of the last step), or None to start from a fresh reset."""
        return None


def overrides(hooks: LoopHooks, name: str) -> bool:
    """Whether ``hooks`` defines its own ``name`` (the loop skips the call otherwise)."""
    return getattr(type(hooks), name) is not getattr(LoopHooks, name)
