"""How to build an environment, as plain data: importable without gymnasium (the CLI parses flags into it)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class EnvConfig:
    """How to build one environment."""

    env_id: str = field(
        default="CartPole-v1", metadata={"help": "gymnasium id (ALE/Pong-v5, Hopper-v5, ...)."}
    )
    reward_flip_p: float = field(
        default=0.0, metadata={"help": "Probability of flipping the reward's sign (Atari noise)."}
    )
    reward_noise_sigma: float = field(
        default=0.0, metadata={"help": "Std of Gaussian reward noise (continuous noise)."}
    )
    discretize_bins: int = field(
        default=0, metadata={"help": "Discretise Box actions into this many bins (0: off)."}
    )
    normalize: bool = field(
        default=True, metadata={"help": "Normalise observations and rewards (vector envs)."}
    )
    gamma: float = field(default=0.99, metadata={"help": "Discount used by reward normalisation."})
    kwargs: dict = field(default_factory=dict, metadata={"help": "Keyword arguments of gymnasium.make."})


def is_atari(env_id: str) -> bool:
    return env_id.startswith("ALE/") or "NoFrameskip" in env_id
