"""Adversarial inverse RL for transition policies (Fu et al. 2018, as used by Byun & Perrault, ICLR 2022).

The discriminator compares the transition policy's (s, a, s') with the next primitive's own ones at its starts
(its initiation set):

    f(s, a, s') = g(s, a) + gamma * h(s') - h(s)          (h(s') is 0 after a terminal step)
    D = exp(f) / (exp(f) + pi(a|s)) = sigmoid(f - log pi(a|s))
    reward of the transition policy = -log(1 - D) = softplus(f - log pi)

The pure functions below are the maths; :class:`AIRLDiscriminator` holds g (100x100) and h (100x100);
:class:`AIRLHooks` plugs the reward and the discriminator updates into the shared PPO loop of `control.train`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from control.hooks import LoopContext, LoopHooks, StepRecord
from control.networks import mlp


def airl_logits(
    g: torch.Tensor,
    h: torch.Tensor,
    h_next: torch.Tensor,
    log_pi: torch.Tensor,
    gamma: float,
    terminal: torch.Tensor,
) -> torch.Tensor:
    """The discriminator's logit f(s, a, s') - log pi(a|s), with f = g + gamma (1 - terminal) h(s') - h(s)."""
    f = g + gamma * (1.0 - terminal) * h_next - h
    return f - log_pi


def airl_reward(logits: torch.Tensor) -> torch.Tensor:
    """-log(1 - D) with D = sigmoid(logits): the transition policy's reward (softplus, stable for any logit)."""
    return F.softplus(logits)


def discriminator_loss(expert_logits: torch.Tensor, policy_logits: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy: expert samples labelled 1, the policy's labelled 0 (each side averaged)."""
    return F.softplus(-expert_logits).mean() + F.softplus(policy_logits).mean()


class AIRLDiscriminator(nn.Module):
    """g(s, a) and the shaping potential h(s), tanh MLPs; states are standardised with fixed statistics (those
    of the expert data) so the discriminator sees a stable scale."""

    def __init__(
        self,
        state_dim: int,
        action_dim: int,
        hidden: tuple[int, ...] = (100, 100),
        state_mean: np.ndarray | None = None,
        state_std: np.ndarray | None = None,
    ):
        super().__init__()
        self.g = mlp(state_dim + action_dim, 1, hidden, 1.0)
        self.h = mlp(state_dim, 1, hidden, 1.0)
        mean = np.zeros(state_dim) if state_mean is None else state_mean
        std = np.ones(state_dim) if state_std is None else state_std
        self.register_buffer("state_mean", torch.as_tensor(mean, dtype=torch.float32))
        self.register_buffer("state_std", torch.as_tensor(np.maximum(std, 1e-3), dtype=torch.float32))

    def _s(self, s: torch.Tensor) -> torch.Tensor:
        return ((s - self.state_mean) / self.state_std).clamp(-10, 10)

    def logits(
        self,
        s: torch.Tensor,
        a: torch.Tensor,
        s_next: torch.Tensor,
        log_pi: torch.Tensor,
        terminal: torch.Tensor,
        gamma: float,
    ) -> torch.Tensor:
        s, s_next = self._s(s), self._s(s_next)
        g = self.g(torch.cat([s, a], -1)).squeeze(-1)
        return airl_logits(g, self.h(s).squeeze(-1), self.h(s_next).squeeze(-1), log_pi, gamma, terminal)


@dataclass
class ExpertData:
    """The next primitive's (s, a, s', terminal) at its starts, raw observations (see `expert.py`)."""

    obs: np.ndarray
    actions: np.ndarray
    next_obs: np.ndarray
    terminal: np.ndarray

    @classmethod
    def load(cls, path: str) -> ExpertData:
        with np.load(path) as data:
            return cls(*(data[k] for k in ("obs", "actions", "next_obs", "terminal")))

    def save(self, path: str) -> None:
        np.savez_compressed(
            path, obs=self.obs, actions=self.actions, next_obs=self.next_obs, terminal=self.terminal
        )

    def __len__(self) -> int:
        return len(self.obs)


@dataclass
class AIRLSettings:
    """The discriminator's settings (paper: 100x100 discriminator; PPO inside with gamma 0.995)."""

    hidden: tuple[int, ...] = field(default=(100, 100), metadata={"help": "Discriminator hidden sizes."})
    learning_rate: float = field(default=3e-4, metadata={"help": "Discriminator Adam learning rate."})
    epochs: int = field(
        default=5, metadata={"help": "Discriminator passes over each rollout (if updates is 0)."}
    )
    updates: int = field(
        default=0,
        metadata={
            "help": "Discriminator minibatch steps per rollout, drawn at random from it (0: `epochs` passes). "
            "The authors' code takes 10 steps of 64 per 50,000-step rollout: a discriminator far slower than "
            "the policy."
        },
    )
    max_accuracy: float = field(
        default=1.0,
        metadata={
            "help": "Skip a discriminator step when its accuracy on that minibatch (expert and policy samples "
            "classified right, averaged) is above this (1.0: never skip): it stops winning outright."
        },
    )
    minibatch_size: int = field(default=256, metadata={"help": "Discriminator minibatch (each side)."})
    state_dims: int = field(
        default=0, metadata={"help": "Observation dims the discriminator compares (0: all; the walker: 17)."}
    )


class AIRLHooks(LoopHooks):
    """The AIRL reward as the loop's reward term, the discriminator trained after each rollout on the rollout's
    transitions against the expert's. The discriminator needs log pi(a|s) of the expert's actions under the
    current policy: it evaluates them with the agent (observations normalised as the policy sees them)."""

    def __init__(self, expert: ExpertData, settings: AIRLSettings, gamma: float):
        self.expert, self.settings, self.gamma = expert, settings, gamma
        self.dims = settings.state_dims or expert.obs.shape[1]
        self.records: list[tuple[np.ndarray, ...]] = []
        self.stats: dict[str, float] = {}
        self.reward_sum, self.reward_count = 0.0, 0

    def config_extra(self) -> dict[str, Any]:
        return {
            "airl": {
                **self.settings.__dict__,
                "hidden": list(self.settings.hidden),
                "expert": len(self.expert),
            }
        }

    def setup(self, ctx: LoopContext) -> None:
        self.ctx = ctx
        s = self.expert.obs[:, : self.dims]
        act_dim = int(np.prod(ctx.envs.single_action_space.shape))
        self.discriminator = AIRLDiscriminator(
            self.dims, act_dim, tuple(self.settings.hidden), s.mean(0), s.std(0)
        ).to(ctx.device)
        self.optimizer = torch.optim.Adam(self.discriminator.parameters(), lr=self.settings.learning_rate)
        space = ctx.envs.single_action_space  # g sees actions as the env applies them (clipped)
        self.action_low, self.action_high = space.low.astype(np.float32), space.high.astype(np.float32)
        self.generator = torch.Generator().manual_seed(ctx.cfg.seed + 77)

    def _policy_obs(self, raw: np.ndarray) -> np.ndarray:
        norm = self.ctx.norm
        return norm.apply_obs(raw) if norm is not None else raw

    @torch.no_grad()
    def reward_term(self, step: StepRecord) -> np.ndarray:
        s, s_next = step.raw_obs[:, : self.dims], step.true_next_obs()[:, : self.dims]
        terminal = np.asarray(step.terminated, np.float32)
        action = np.clip(np.asarray(step.action, np.float32), self.action_low, self.action_high)
        record = (s, action, s_next, np.asarray(step.log_prob, np.float32), terminal)
        self.records.append(record)
        tensors = [torch.as_tensor(x, dtype=torch.float32) for x in record]
        logits = self.discriminator.logits(*tensors, self.gamma)
        reward = airl_reward(logits).numpy().astype(np.float64)
        self.reward_sum, self.reward_count = (
            self.reward_sum + float(reward.sum()),
            self.reward_count + len(reward),
        )
        return reward

    def _expert_log_pi(self, idx: np.ndarray) -> torch.Tensor:
        obs = self._policy_obs(self.expert.obs[idx]).astype(np.float32)
        actions = torch.as_tensor(self.expert.actions[idx], dtype=torch.float32)
        with torch.no_grad():
            _, log_pi, *_ = self.ctx.agent.distribution_terms(torch.as_tensor(obs), actions)
        return log_pi

    def after_rollout(self) -> None:
        """Update the discriminator on this rollout's transitions vs as many expert ones."""
        s, a, s_next, log_pi, terminal = (
            torch.as_tensor(np.concatenate(x), dtype=torch.float32) for x in zip(*self.records, strict=True)
        )
        self.records = []
        e = self.expert
        losses, expert_d, policy_d, accuracies, steps = [], [], [], [], 0
        for idx in self._minibatches(len(s)):
            eidx = torch.randint(len(e), (len(idx),), generator=self.generator).numpy()
            e_logits = self.discriminator.logits(
                torch.as_tensor(e.obs[eidx, : self.dims], dtype=torch.float32),
                torch.as_tensor(np.clip(e.actions[eidx], self.action_low, self.action_high)),
                torch.as_tensor(e.next_obs[eidx, : self.dims], dtype=torch.float32),
                self._expert_log_pi(eidx),
                torch.as_tensor(e.terminal[eidx], dtype=torch.float32),
                self.gamma,
            )
            p_logits = self.discriminator.logits(
                s[idx], a[idx], s_next[idx], log_pi[idx], terminal[idx], self.gamma
            )
            loss = discriminator_loss(e_logits, p_logits)
            accuracy = 0.5 * ((e_logits > 0).float().mean() + (p_logits < 0).float().mean()).item()
            if accuracy <= self.settings.max_accuracy:
                self.optimizer.zero_grad()
                loss.backward()
                self.optimizer.step()
                steps += 1
            losses.append(loss.item())
            accuracies.append(accuracy)
            expert_d.append(torch.sigmoid(e_logits).mean().item())
            policy_d.append(torch.sigmoid(p_logits).mean().item())
        self.stats = {
            "airl/discriminator_loss": float(np.mean(losses)),
            "airl/expert_D": float(np.mean(expert_d)),
            "airl/policy_D": float(np.mean(policy_d)),
            "airl/accuracy": float(np.mean(accuracies)),
            "airl/steps": float(steps),
        }

    def _minibatches(self, n: int):
        """Indices of the rollout's samples for each discriminator step: `updates` random minibatches, or
        `epochs` shuffled passes."""
        batch = self.settings.minibatch_size
        if self.settings.updates > 0:
            for _ in range(self.settings.updates):
                yield torch.randint(n, (min(batch, n),), generator=self.generator)
            return
        for _ in range(self.settings.epochs):
            order = torch.randperm(n, generator=self.generator)
            for start in range(0, n, batch):
                yield order[start : start + batch]

    def logs(self) -> dict[str, float]:
        mean_reward = self.reward_sum / max(self.reward_count, 1)
        self.reward_sum, self.reward_count = 0.0, 0
        return {**self.stats, "airl/reward_mean": mean_reward}

    def state_dict(self) -> dict[str, Any]:
        return {
            "discriminator": self.discriminator.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "generator": self.generator.get_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state:
            self.discriminator.load_state_dict(state["discriminator"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.generator.set_state(state["generator"])
