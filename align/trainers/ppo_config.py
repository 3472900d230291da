"""Configuration of the PPO trainer (defaults: the ARES paper's PPO stage, Byun et al., 2024)."""

from __future__ import annotations

from dataclasses import dataclass, field

from align.generate import SamplingConfig
from align.rl.losses import POLICY_LOSSES
from align.trainers.checkpointing import CHECKPOINTING_MODES


@dataclass
class PPOConfig:
    """PPO with token-level rewards for causal LMs and VLMs."""

    output_dir: str = field(default="runs/ppo", metadata={"help": "Where checkpoints and metrics go."})
    seed: int = field(default=0, metadata={"help": "Seed for data order, sampling and dropout."})
    prompts_per_iteration: int = field(default=8, metadata={"help": "Problems per PPO iteration."})
    sampling: SamplingConfig = field(
        default_factory=SamplingConfig,
        metadata={"help": "How responses are sampled: num_samples per problem (ARES k=4), top_k 50, ..."},
    )
    chat: bool | None = field(
        default=None,
        metadata={
            "help": "Prompts through the chat template: true, false (raw text), none (when there is one)."
        },
    )
    ppo_epochs: int = field(default=10, metadata={"help": "Passes over each rollout (ARES base: 10)."})
    minibatch_size: int = field(default=8, metadata={"help": "Sequences per optimizer micro-step."})
    gradient_accumulation_steps: int = field(default=1, metadata={"help": "Micro-steps per optimizer step."})
    learning_rate: float = field(default=2e-5, metadata={"help": "AdamW learning rate (ARES: 2e-5)."})
    weight_decay: float = field(default=0.01, metadata={"help": "AdamW weight decay (ARES: 0.01)."})
    max_grad_norm: float = field(default=1.0, metadata={"help": "Gradient clipping norm."})
    clip_range: float = field(default=0.2, metadata={"help": "PPO ratio clip epsilon."})
    value_clip_range: float | None = field(default=None, metadata={"help": "Clip values around old ones."})
    gamma: float = field(default=1.0, metadata={"help": "Discount (ARES: 1.0)."})
    lam: float = field(default=0.95, metadata={"help": "GAE lambda (ARES: 0.95)."})
    vf_coef: float = field(default=1.0, metadata={"help": "Value-loss coefficient (ARES: 1.0)."})
    ent_coef: float = field(default=0.0, metadata={"help": "Entropy bonus coefficient (ARES: none)."})
    whiten_advantages: bool = field(default=True, metadata={"help": "Whiten advantages over the rollout."})
    kl_coef: float = field(default=1e-4, metadata={"help": "Per-token KL penalty coefficient (ARES: 1e-4)."})
    kl_estimator: str = field(default="k1", metadata={"help": "KL estimator: k1 or k3."})
    adaptive_kl_target: float | None = field(
        default=None, metadata={"help": "Target KL for the adaptive controller (None: fixed)."}
    )
    adaptive_kl_horizon: int = field(
        default=10000,
        metadata={"help": "Horizon of the adaptive KL controller, in sampled responses (Ziegler et al.)."},
    )
    policy_loss: str = field(
        default="ppo", metadata={"help": "A registered policy loss: 'ppo' or 'sppo' (symmetric RCE loss)."}
    )
    sppo_alpha: float = field(default=1.0, metadata={"help": "SPPO weight of the PPO term."})
    sppo_beta: float = field(default=0.0, metadata={"help": "SPPO weight of the reverse term."})
    sppo_z: float = field(default=-1.0, metadata={"help": "SPPO's Z (RCE's stand-in for log 0)."})
    value_warmup_iterations: int = field(
        default=0,
        metadata={"help": "First iterations that train only the value head (the policy does not move)."},
    )
    reuse_scoring_forward: bool = field(
        default=True,
        metadata={
            "help": "Single process: the first update micro-step trains on the rollout's scoring forward "
            "(kept with its activations) instead of running it again; the same update, one forward fewer."
        },
    )
    activation_checkpointing: str = field(
        default="selective",
        metadata={
            "help": "What each layer keeps between a forward with gradients and its backward: 'selective' (the "
            "outputs of matrix products and attention; the rest is recomputed), 'full' (its input; the layer is "
            "recomputed), 'none' (everything). The shared-prompt KV cache is kept in every mode."
        },
    )
    value_head_hidden: int = field(default=0, metadata={"help": "Value-head MLP width (0: model width)."})
    mixed_precision: str | None = field(
        default=None,
        metadata={"help": "no, fp16 or bf16; none: the launch's setting (accelerate config or flags)."},
    )
    report_to: str = field(default="none", metadata={"help": "Trackers: none, tensorboard, wandb."})
    save_every: int = field(default=1, metadata={"help": "Save a resumable checkpoint every N iterations."})

    def __post_init__(self) -> None:
        if self.policy_loss not in POLICY_LOSSES:
            raise ValueError(
                f"ppo.policy_loss must be one of {sorted(POLICY_LOSSES)}, got {self.policy_loss!r}"
            )
        if self.kl_estimator not in ("k1", "k3"):
            raise ValueError(f"kl_estimator must be 'k1' or 'k3', got {self.kl_estimator!r}")
        if self.minibatch_size < 1 or self.sampling.num_samples < 1 or self.prompts_per_iteration < 1:
            raise ValueError("minibatch_size, sampling.num_samples and prompts_per_iteration must be >= 1")
        if self.activation_checkpointing not in CHECKPOINTING_MODES:
            raise ValueError(
                f"ppo.activation_checkpointing must be one of {CHECKPOINTING_MODES}, "
                f"got {self.activation_checkpointing!r}"
            )
        if not self.sampling.do_sample:
            raise ValueError("PPO learns from sampled responses: sampling.do_sample must be true")
