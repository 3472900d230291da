"""The algorithm registry: a name -> its update family, its policy loss and (optionally) the hooks it adds to the
shared loop. Adding an algorithm is one `register(Algorithm(...))` call in a module that
`control/algos/__init__.py` imports; the CLI and the sweep runner see it at once."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from align.user_errors import unknown_name
from control.algo_names import BUILTIN_ALGORITHMS
from control.losses.policy import a2c_loss, ppo_loss, sa2c_loss, sppo_loss


@dataclass
class LossInputs:
    """Per-sample tensors of a minibatch. `prob` is pi(a|s), None for Gaussian policies."""

    log_prob: torch.Tensor
    old_log_prob: torch.Tensor
    advantages: torch.Tensor
    prob: torch.Tensor | None


@dataclass(frozen=True)
class Algorithm:
    name: str
    family: str  # "ppo": several epochs over minibatches; "a2c": one gradient step per rollout
    policy_loss: Callable[[LossInputs, Any], tuple[torch.Tensor, dict[str, torch.Tensor]]]
    needs_prob: bool = False
    description: str = ""
    symmetric: bool = False  # sppo/sa2c: the paper's alpha/beta and discretised actions by default
    # builds the control.hooks.LoopHooks the algorithm adds to the shared loop (a critic, a reward term, ...)
    hooks: Callable[[Any], Any] | None = None


ALGORITHMS: dict[str, Algorithm] = {}


def register(algorithm: Algorithm) -> Algorithm:
    ALGORITHMS[algorithm.name] = algorithm
    return algorithm


def get(name: str) -> Algorithm:
    if name not in ALGORITHMS:
        raise unknown_name("algorithm (--algo)", name, sorted(ALGORITHMS))
    return ALGORITHMS[name]


def _need_prob(x: LossInputs) -> torch.Tensor:
    if x.prob is None:
        raise ValueError(
            "the symmetric (reverse) term needs pi(a|s): use a discrete action space or "
            "--discretize-bins 11 for continuous control, as the SPPO/SA2C authors did"
        )
    return x.prob


register(
    Algorithm(
        "ppo",
        "ppo",
        lambda x, c: ppo_loss(x.log_prob, x.old_log_prob, x.advantages, c.clip_coef),
        description=BUILTIN_ALGORITHMS["ppo"],
    )
)
register(
    Algorithm(
        "sppo",
        "ppo",
        lambda x, c: sppo_loss(
            x.log_prob,
            x.old_log_prob,
            x.advantages,
            _need_prob(x) if c.beta else x.log_prob.exp(),
            c.clip_coef,
            c.alpha,
            c.beta,
            c.z,
        ),
        needs_prob=True,
        description=BUILTIN_ALGORITHMS["sppo"],
        symmetric=True,
    )
)
register(
    Algorithm(
        "a2c", "a2c", lambda x, c: a2c_loss(x.log_prob, x.advantages), description=BUILTIN_ALGORITHMS["a2c"]
    )
)
register(
    Algorithm(
        "sa2c",
        "a2c",
        lambda x, c: sa2c_loss(
            x.log_prob, x.advantages, _need_prob(x) if c.beta else x.log_prob.exp(), c.alpha, c.beta, c.z
        ),
        needs_prob=True,
        description=BUILTIN_ALGORITHMS["sa2c"],
        symmetric=True,
    )
)
