"""One config for every control algorithm; `with_algo_defaults` fills in the per-algorithm and Atari defaults."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from control.env_config import EnvConfig, is_atari

UNSET = None


@dataclass
class TrainConfig:
    """Training settings (CleanRL / SB3 PPO defaults unless the algorithm or env family says otherwise)."""

    algo: str = field(
        default="ppo", metadata={"help": "ppo, sppo, a2c, sa2c (and any registered algorithm)."}
    )
    env_id: str = field(default="CartPole-v1", metadata={"help": "gymnasium environment id."})
    env_kwargs: dict = field(
        default_factory=dict,
        metadata={"help": "Keyword arguments of gymnasium.make, as JSON (non-Atari envs)."},
    )
    seed: int = field(default=1, metadata={"help": "Seed of envs, network and sampling."})
    total_steps: int = field(default=100_000, metadata={"help": "Environment steps in total."})
    num_envs: int | None = field(default=UNSET, metadata={"help": "Parallel envs (default 1; Atari 8)."})
    num_steps: int | None = field(
        default=UNSET, metadata={"help": "Steps per env per rollout (PPO 2048/Atari 128, A2C 5)."}
    )
    update_epochs: int | None = field(
        default=UNSET, metadata={"help": "Passes over each rollout (PPO 10/Atari 4, A2C 1)."}
    )
    minibatch_size: int | None = field(
        default=UNSET, metadata={"help": "Minibatch size (PPO 64/Atari 256, A2C: whole rollout)."}
    )
    learning_rate: float | None = field(
        default=UNSET, metadata={"help": "Adam learning rate (PPO 3e-4/Atari 2.5e-4, A2C 7e-4)."}
    )
    anneal_lr: bool = field(default=True, metadata={"help": "Linearly anneal the learning rate to 0."})
    gamma: float = field(default=0.99, metadata={"help": "Discount."})
    gae_lambda: float | None = field(default=UNSET, metadata={"help": "GAE lambda (PPO 0.95, A2C 1.0)."})
    clip_coef: float | None = field(default=UNSET, metadata={"help": "Ratio clip (0.2; Atari 0.1)."})
    clip_vloss: bool = field(default=False, metadata={"help": "Clip the value loss around old values."})
    ent_coef: float | None = field(default=UNSET, metadata={"help": "Entropy coefficient (0; Atari 0.01)."})
    vf_coef: float = field(default=0.5, metadata={"help": "Value-loss coefficient."})
    max_grad_norm: float = field(default=0.5, metadata={"help": "Gradient clipping norm."})
    norm_adv: bool | None = field(
        default=UNSET, metadata={"help": "Normalise advantages per minibatch (PPO yes, A2C no)."}
    )
    alpha: float | None = field(
        default=UNSET,
        metadata={
            "help": "Symmetric loss: weight of the PPO/A2C term (sppo/sa2c: 0.5, the paper's; ppo/a2c: 1)."
        },
    )
    beta: float | None = field(
        default=UNSET,
        metadata={
            "help": "Symmetric loss: weight of the reverse (RCE) term (sppo/sa2c: 1.0, the paper's Atari setting; "
            "its MuJoCo runs tune it up to 20; ppo/a2c: 0)."
        },
    )
    z: float = field(
        default=-1.0, metadata={"help": "Symmetric loss: Z, RCE's stand-in for log 0 (authors: -1)."}
    )
    reward_flip_p: float = field(
        default=0.0, metadata={"help": "Reward sign-flip probability (Atari noise)."}
    )
    reward_noise: float = field(
        default=0.0, metadata={"help": "Gaussian reward-noise std (continuous noise)."}
    )
    discretize_bins: int | None = field(
        default=UNSET,
        metadata={
            "help": "Discretise each continuous action dimension into N bins (0: off). Default: 11 for sppo/sa2c "
            "on continuous actions (the symmetric term needs pi(a|s); the authors' setting), else 0."
        },
    )
    normalize: bool = field(
        default=True, metadata={"help": "Observation and reward normalisation (vector obs)."}
    )
    hidden: tuple[int, ...] = field(default=(64, 64), metadata={"help": "MLP hidden sizes."})
    eval_every: int = field(
        default=0, metadata={"help": "Evaluate without noise every N steps (0: only at the end)."}
    )
    eval_episodes: int = field(default=5, metadata={"help": "Episodes per evaluation."})
    eval_greedy: bool | None = field(
        default=None,
        metadata={
            "help": "Evaluate with the greedy action (argmax / Gaussian mean) instead of a sampled one. Default: "
            "greedy, except on Atari, where greedy policies often loop and rl-zoo/CleanRL sample."
        },
    )
    checkpoint_every: int = field(
        default=100_000,
        metadata={"help": "Save a checkpoint every N steps (0: only at the end and when stopped by Ctrl-C)."},
    )
    out_dir: str = field(
        default="",
        metadata={
            "help": "Run folder (TensorBoard, CSVs, checkpoint). Default: a new folder "
            "runs/control/<env>__<algo>__s<seed>__<start time>; rerunning an unfinished run's command resumes it."
        },
    )
    overwrite: bool = field(
        default=False,
        metadata={
            "help": "Delete what the run folder holds and start over (a changed config is refused without)."
        },
    )
    quiet: bool = field(default=False, metadata={"help": "No progress line."})
    track: bool = field(
        default=False,
        metadata={
            "help": "Also log to Weights & Biases (pip install wandb; WANDB_MODE=offline works without a network)."
        },
    )
    wandb_project: str = field(
        default="ares-control", metadata={"help": "Weights & Biases project (--track)."}
    )
    threads: int = field(default=1, metadata={"help": "torch threads (1 is fastest for small MLPs)."})
    compile: str = field(
        default="auto",
        metadata={
            "help": "Compile each minibatch's gradient step ahead of time (AOTInductor; MLP policies): on, off, "
            "or auto (on for runs with >= 100,000 steps ahead on the CPU, else only if already compiled). The "
            "first compile of a configuration on a machine costs ~20 s of CPU; later runs load it from the "
            "cache in milliseconds."
        },
    )
    async_envs: bool = field(
        default=False,
        metadata={"help": "Step the envs in parallel processes (shared memory) instead of in turn."},
    )
    rollout_workers: int = field(
        default=1,
        metadata={
            "help": "Processes that collect each rollout together (MLP policies; algorithms without per-step "
            "hooks): each steps its share of --num-envs with its own copy of the policy, and they meet once per "
            "rollout, not once per step. Normalisation statistics merge at each rollout's end, so results differ "
            "slightly from 1 process. On Hopper, 2 workers x 1 env train 1.3-1.5x faster than 1 env on 2 cores."
        },
    )
    device: str = field(
        default="auto",
        metadata={
            "help": "Device of the networks and updates: cpu, cuda, cuda:N, or auto (a GPU for image "
            "policies when there is one, the CPU for MLP policies)."
        },
    )
    bf16: bool = field(
        default=False,
        metadata={
            "help": "Run the Nature CNN trunk under bfloat16 autocast (GPUs; CPUs with AMX/AVX512-BF16, where "
            "updates are ~2.4x faster); heads, losses and weights stay float32. Image policies only."
        },
    )

    def evaluates_greedily(self) -> bool:
        return self.eval_greedy if self.eval_greedy is not None else not is_atari(self.env_id)

    def env_config(self) -> EnvConfig:
        return EnvConfig(
            self.env_id,
            self.reward_flip_p,
            self.reward_noise,
            self.discretize_bins,
            self.normalize and not is_atari(self.env_id),
            self.gamma,
            dict(self.env_kwargs),
        )


# The defaults of the unset (None) fields, one column per (update family, env kind). PPO as SB3/CleanRL, A2C as
# SB3, Atari as the symmetric-loss paper (PPO: 8 envs x 128 steps, 4 epochs; A2C: 16 envs).
DEFAULT_COLUMNS = ("ppo", "a2c", "ppo-atari", "a2c-atari")
DEFAULTS: dict[str, tuple] = {
    # field: (ppo, a2c, ppo-atari, a2c-atari)
    "num_envs": (1, 1, 8, 16),
    "num_steps": (2048, 5, 128, 5),
    "update_epochs": (10, 1, 4, 1),
    "minibatch_size": (64, 0, 256, 0),
    "learning_rate": (3e-4, 7e-4, 2.5e-4, 7e-4),
    "gae_lambda": (0.95, 1.0, 0.95, 1.0),
    "clip_coef": (0.2, 0.2, 0.1, 0.2),
    "ent_coef": (0.0, 0.0, 0.01, 0.01),
    "norm_adv": (True, False, True, False),
}


def algo_defaults(on_policy_family: str, env_id: str) -> dict:
    """The column of :data:`DEFAULTS` for `on_policy_family` ('ppo' or 'a2c') and the env's kind."""
    if on_policy_family not in ("ppo", "a2c"):
        raise ValueError(f"unknown update family {on_policy_family!r}: expected 'ppo' or 'a2c'")
    column = DEFAULT_COLUMNS.index(on_policy_family + ("-atari" if is_atari(env_id) else ""))
    return {name: values[column] for name, values in DEFAULTS.items()}


# the symmetric-loss paper's weights for sppo/sa2c (its Atari setting; Z = -1 is the TrainConfig default)
SYMMETRIC_DEFAULTS = {"alpha": 0.5, "beta": 1.0}
PLAIN_DEFAULTS = {"alpha": 1.0, "beta": 0.0}


def with_algo_defaults(cfg: TrainConfig, on_policy_family: str, symmetric: bool = False) -> TrainConfig:
    """Fill unset fields from the family's column of :data:`DEFAULTS` (Atari ids: the Atari column), and the
    symmetric-loss weights (the paper's for sppo/sa2c, PPO's otherwise)."""
    base = {
        **algo_defaults(on_policy_family, cfg.env_id),
        **(SYMMETRIC_DEFAULTS if symmetric else PLAIN_DEFAULTS),
    }
    filled = {k: v for k, v in base.items() if getattr(cfg, k) is None}
    return dataclasses.replace(cfg, **filled)


# Fields that do not change what a run learns: a run folder may be resumed with other values of these.
NOT_RESULT_CHANGING = (
    "out_dir",
    "overwrite",
    "quiet",
    "track",
    "wandb_project",
    "threads",
    "compile",
    "device",
    "async_envs",
    "checkpoint_every",
    "eval_every",
    "eval_episodes",
    "eval_greedy",
)
FLAG_NAMES = {"env_id": "--env", "total_steps": "--steps", "algo": "--algo"}


def flag(name: str) -> str:
    """The command-line flag of a TrainConfig field."""
    return FLAG_NAMES.get(name, "--" + name.replace("_", "-"))


# (field, check, what is expected); unset (None) fields are not checked
_RULES: list[tuple[str, Callable[[Any], bool], str]] = [
    ("total_steps", lambda v: v > 0, "> 0"),
    ("seed", lambda v: v >= 0, ">= 0"),
    ("num_envs", lambda v: v > 0, "> 0"),
    ("num_steps", lambda v: v > 0, "> 0"),
    ("update_epochs", lambda v: v > 0, "> 0"),
    ("minibatch_size", lambda v: v >= 0, ">= 0 (0: the whole rollout)"),
    ("learning_rate", lambda v: v > 0 and math.isfinite(v), "> 0"),
    ("gamma", lambda v: 0 < v <= 1, "in (0, 1]"),
    ("gae_lambda", lambda v: 0 <= v <= 1, "in [0, 1]"),
    ("clip_coef", lambda v: v > 0, "> 0"),
    ("ent_coef", lambda v: v >= 0, ">= 0"),
    ("vf_coef", lambda v: v >= 0, ">= 0"),
    ("max_grad_norm", lambda v: v > 0, "> 0"),
    ("alpha", lambda v: v >= 0, ">= 0"),
    ("beta", lambda v: v >= 0, ">= 0"),
    ("z", lambda v: v < 0, "< 0 (RCE's stand-in for log 0)"),
    ("reward_flip_p", lambda v: 0 <= v <= 1, "in [0, 1]"),
    ("reward_noise", lambda v: v >= 0, ">= 0"),
    ("discretize_bins", lambda v: v == 0 or v >= 2, "0 (off) or >= 2"),
    ("eval_every", lambda v: v >= 0, ">= 0"),
    ("eval_episodes", lambda v: v >= 0, ">= 0"),
    ("checkpoint_every", lambda v: v >= 0, ">= 0"),
    ("threads", lambda v: v >= 1, ">= 1"),
    ("rollout_workers", lambda v: v >= 1, ">= 1"),
    ("compile", lambda v: v in ("auto", "on", "off"), "auto, on or off"),
]


def config_problems(cfg: TrainConfig) -> list[str]:
    """What is wrong with `cfg`, one message per field, naming the flag: `--steps must be > 0, got -5`."""
    problems = []
    for name, ok, expected in _RULES:
        value = getattr(cfg, name)
        if value is None:
            continue
        try:
            good = ok(value)
        except TypeError:
            good = False
        if not good:
            problems.append(f"{flag(name)} must be {expected}, got {value!r}")
    if cfg.rollout_workers > 1 and cfg.num_envs is not None and cfg.rollout_workers > cfg.num_envs:
        problems.append(
            f"--rollout-workers {cfg.rollout_workers} needs at least as many envs, got --num-envs {cfg.num_envs}"
        )
    if cfg.rollout_workers > 1 and cfg.async_envs:
        problems.append("--async-envs and --rollout-workers > 1 do not combine: choose one")
    if not cfg.hidden or any(h <= 0 for h in cfg.hidden):
        problems.append(f"hidden sizes must be > 0, got {cfg.hidden!r}")
    return problems
