"""Rollout-time action samplers: `act(obs) -> (action, log_prob, value)` and `value(obs)` on numpy arrays.

A rollout calls the policy once per environment step with a handful of observations, where torch's per-call
overhead (module dispatch, autograd bookkeeping, tensor wrapping) is several times the arithmetic of a small
MLP. `NumpyMLPSampler` runs a float32 numpy copy of an MLP `ActorCritic`, refreshed with `sync()` after every
update, so the rollout samples from exactly the policy being trained; `TorchSampler` wraps any `ActorCritic`
(the Atari CNN, where the convolutions dominate). Both give the same log-probabilities and values as
`ActorCritic.distribution_terms` (tests check it), so PPO's ratios start at 1.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from control.distributions import HALF_LOG_2PI
from control.networks import ActorCritic


class Sampler(Protocol):
    def act(self, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]: ...
    def value(self, obs: np.ndarray) -> np.ndarray: ...
    def sync(self) -> None: ...
    def state_dict(self) -> dict[str, Any]: ...
    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class TorchSampler:
    """Samples with the torch network itself, on its device (the global torch RNG of that device); values from
    `critic.value` when a critic replaces the agent's value head."""

    def __init__(self, agent: ActorCritic, critic: nn.Module | None = None):
        self.agent, self.critic = agent, critic
        self.device = next(agent.parameters()).device

    @torch.no_grad()
    def act(self, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        x = torch.as_tensor(obs, device=self.device)
        terms = self.agent.distribution_terms(x)
        action, log_prob, _, _, value, _ = (t.cpu() if t is not None else t for t in terms)
        if self.critic is not None:
            value = self.critic.value(x).cpu()
        return action.numpy(), log_prob.numpy(), value.numpy()

    @torch.no_grad()
    def value(self, obs: np.ndarray) -> np.ndarray:
        x = torch.as_tensor(obs, device=self.device)
        net = self.critic if self.critic is not None else self.agent
        return net.value(x).cpu().numpy()

    def sync(self) -> None:
        pass

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


def linear_layers(seq: nn.Sequential) -> list[nn.Linear]:
    """The Linear layers of a Linear/Tanh MLP, in order (what a numpy copy of it needs)."""
    layers = [m for m in seq if isinstance(m, nn.Linear)]
    if any(not isinstance(m, (nn.Linear, nn.Tanh)) for m in seq):
        raise ValueError("NumpyMLPSampler supports Linear/Tanh MLPs only")
    return layers


def numpy_params(layers: list[nn.Linear]) -> list[tuple[np.ndarray, np.ndarray]]:
    """A float32 numpy copy of Linear layers' (transposed weight, bias), as `mlp_forward` takes them."""
    return [
        (
            m.weight.detach().cpu().numpy().T.astype(np.float32),
            m.bias.detach().cpu().numpy().astype(np.float32),
        )
        for m in layers
    ]


def mlp_forward(params: list[tuple[np.ndarray, np.ndarray]], x: np.ndarray) -> np.ndarray:
    """A Linear/Tanh MLP in numpy: `params` are (transposed weight, bias) per layer; tanh between layers."""
    for i, (weight_t, bias) in enumerate(params):
        x = x @ weight_t
        x += bias
        if i < len(params) - 1:
            np.tanh(x, out=x)
    return x


def _side_by_side(
    first: list[tuple[np.ndarray, np.ndarray]], second: list[tuple[np.ndarray, np.ndarray]]
) -> list[tuple[np.ndarray, np.ndarray]]:
    """One MLP computing two MLPs of equal depth on the same input: the first layers' weights side by side,
    the later ones block-diagonal; its output is [first's output, second's output]. Half the numpy calls
    per rollout step (the off-diagonal zeros add exact zeros)."""
    layers = []
    for i, ((wa, ba), (wb, bb)) in enumerate(zip(first, second, strict=True)):
        if i == 0:
            weight = np.concatenate([wa, wb], 1)
        else:
            weight = np.zeros((wa.shape[0] + wb.shape[0], wa.shape[1] + wb.shape[1]), np.float32)
            weight[: wa.shape[0], : wa.shape[1]] = wa
            weight[wa.shape[0] :, wa.shape[1] :] = wb
        layers.append((weight, np.concatenate([ba, bb])))
    return layers


class NumpyPolicy:
    """`act` and `value` of a numpy MLP actor-critic, from the arrays of `NumpyMLPSampler.params()`, with its own
    seeded numpy generator: what a rollout worker process samples with (no torch needed)."""

    def __init__(self, params: dict[str, Any], seed: int):
        self.rng = np.random.default_rng(seed)
        self.load_params(params)

    def load_params(self, params: dict[str, Any]) -> None:
        """Take the arrays `NumpyMLPSampler.params()` gave (its policy after the latest update)."""
        for name, value in params.items():
            setattr(self, name, value)

    @staticmethod
    def _critic_value(out: np.ndarray) -> np.ndarray:
        return out[:, 0] if out.shape[1] == 1 else out.mean(-1)

    def value(self, obs: np.ndarray) -> np.ndarray:
        return self._critic_value(mlp_forward(self.critic, np.asarray(obs, dtype=np.float32)))

    def act(self, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        obs = np.asarray(obs, dtype=np.float32)
        if self.both is not None:
            both = mlp_forward(self.both, obs)
            out, value = both[:, : self.actor_out], self._critic_value(both[:, self.actor_out :])
        else:
            out, value = mlp_forward(self.actor, obs), self.value(obs)
        if self.offsets is None:
            noise = self.rng.standard_normal(out.shape, dtype=np.float32)
            log_prob = (noise * noise) @ self.minus_half
            log_prob += self.log_prob_offset
            noise *= self.std
            noise += out
            return noise, log_prob, value
        actions, log_prob = [], np.zeros(len(out), dtype=np.float32)
        for lo, hi in zip(self.offsets[:-1], self.offsets[1:], strict=True):
            logits = out[:, lo:hi]
            shifted = logits - logits.max(-1, keepdims=True)
            log_p = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
            gumbel = -np.log(-np.log(self.rng.random(logits.shape, dtype=np.float32).clip(1e-20, None)))
            choice = (logits + gumbel).argmax(-1)
            actions.append(choice)
            log_prob += log_p[np.arange(len(out)), choice]
        action = np.stack(actions, -1)
        return (action[:, 0] if self.kind == "discrete" else action), log_prob, value

    def sync(self) -> None:
        pass

    def state_dict(self) -> dict[str, Any]:
        return {"rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state["rng"]


class NumpyMLPSampler(NumpyPolicy):
    """A float32 numpy copy of an MLP `ActorCritic` (Gaussian, discrete or multi-discrete head) with its own
    seeded numpy generator; call `sync()` after each optimiser step phase. A `critic` replacing the agent's value
    head is copied from its `net` (a Linear/Tanh MLP); the value is the mean of its outputs (one output: itself;
    a quantile critic: the mean quantile)."""

    def __init__(self, agent: ActorCritic, seed: int, critic: nn.Module | None = None):
        if agent.image:
            raise ValueError("NumpyMLPSampler is for vector observations; use TorchSampler for images")
        self.agent = agent
        self.actor_layers = linear_layers(agent.actor)
        self.critic_layers = linear_layers(critic.net if critic is not None else agent.critic)
        super().__init__(self.params(), seed)

    def params(self) -> dict[str, Any]:
        """The numpy arrays of the policy as it is now (what `NumpyPolicy.load_params` takes)."""
        actor, critic = numpy_params(self.actor_layers), numpy_params(self.critic_layers)
        same_depth = len(actor) == len(critic)
        params: dict[str, Any] = {
            "actor": actor,
            "critic": critic,
            "both": _side_by_side(actor, critic) if same_depth else None,
            "actor_out": actor[-1][1].shape[0],
            "kind": self.agent.kind,
            "offsets": np.cumsum([0, *self.agent.nvec]) if self.agent.kind != "gaussian" else None,
        }
        if self.agent.kind == "gaussian":
            log_std = self.agent.log_std.detach().cpu().numpy().astype(np.float32)
            params["std"] = np.exp(log_std)
            # log N(mean + std * noise; mean, std) = -0.5 |noise|^2 - sum(log std) - d/2 log(2 pi)
            params["log_prob_offset"] = np.float32(-log_std.sum() - HALF_LOG_2PI * log_std.shape[0])
            params["minus_half"] = np.full(log_std.shape[0], -0.5, np.float32)
        return params

    def sync(self) -> None:
        self.load_params(self.params())


def make_sampler(agent: ActorCritic, seed: int, critic: nn.Module | None = None) -> Sampler:
    """The numpy sampler for MLP policies, torch otherwise; `critic` replaces the agent's value head."""
    return TorchSampler(agent, critic) if agent.image else NumpyMLPSampler(agent, seed, critic)
