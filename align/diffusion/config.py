"""Configuration of the diffusion RL trainer (defaults: the DLPO authors' code, Chen et al. 2024)."""

from __future__ import annotations

from dataclasses import dataclass, field

from align.diffusion.objectives import OBJECTIVES


@dataclass
class DiffusionRLConfig:
    """RL fine-tuning of a diffusion model with DLPO or a baseline objective."""

    output_dir: str = field(default="runs/dlpo", metadata={"help": "Where checkpoints and metrics go."})
    objective: str = field(default="dlpo", metadata={"help": f"Objective: one of {sorted(OBJECTIVES)}."})
    seed: int = field(default=0, metadata={"help": "Seed for prompt order, sampling noise and timesteps."})
    alpha: float = field(default=5.0, metadata={"help": "Weight of the reward term (DLPO code: 5)."})
    beta: float = field(
        default=1.0,
        metadata={"help": "Weight of the regulariser: diffusion loss (DLPO: 1) or KL (DPOK, KL-in-reward)."},
    )
    clip_range: float = field(default=1e-4, metadata={"help": "DDPO ratio clip (DDPO: 1e-4)."})
    rwr_temperature: float = field(default=1.0, metadata={"help": "RWR temperature on advantages."})
    reward_normalisation: str = field(
        default="whiten",
        metadata={
            "help": "Advantages from rewards: whiten (batch), per_prompt (minus the prompt's mean reward; needs "
            "samples_per_prompt >= 2), center or none (raw reward)."
        },
    )
    num_inference_steps: int = field(
        default=1000, metadata={"help": "Denoising steps when sampling (DLPO: all 1000 DDPM steps)."}
    )
    eta: float = field(default=1.0, metadata={"help": "DDIM eta (ignored by DDPM)."})
    train_steps_per_trajectory: int = field(
        default=10,
        metadata={"help": "Denoising steps of each trajectory kept for the policy-gradient term (0: all)."},
    )
    min_train_step_std: float = field(
        default=0.0,
        metadata={
            "help": "Train only denoising steps whose sampling std is at least this (0: all). A step's log-prob "
            "gradient grows as 1/std, so near-deterministic last steps (std ~1e-3 with betas from 1e-6) "
            "dominate the update with noise."
        },
    )
    log_prob_reduction: str = field(
        default="mean", metadata={"help": "Step log-prob over elements: mean (per element) or sum (density)."}
    )
    diffusion_timesteps: int = field(
        default=11, metadata={"help": "Timesteps at which the diffusion loss is taken per update (DLPO: 11)."}
    )
    diffusion_batch_size: int = field(
        default=8, metadata={"help": "Real examples per diffusion-loss evaluation (data source)."}
    )
    diffusion_loss_kind: str = field(default="l2", metadata={"help": "Diffusion loss: l2 or l1 (WaveGrad)."})
    prompts_per_iteration: int = field(
        default=8, metadata={"help": "Distinct prompts per iteration (DLPO code: batch 8)."}
    )
    samples_per_prompt: int = field(
        default=1,
        metadata={"help": "Trajectories per prompt per iteration (>= 2 for per-prompt baselines)."},
    )
    sampling_batch_size: int = field(default=8, metadata={"help": "Trajectories sampled together."})
    minibatch_size: int = field(default=8, metadata={"help": "Trajectories per optimizer micro-step."})
    epochs_per_rollout: int = field(default=1, metadata={"help": "Passes over each rollout."})
    gradient_accumulation_steps: int = field(default=1, metadata={"help": "Micro-steps per optimizer step."})
    learning_rate: float = field(default=3e-5, metadata={"help": "Adam learning rate (DLPO code: 3e-5)."})
    weight_decay: float = field(default=1e-6, metadata={"help": "Adam weight decay (DLPO code: 1e-6)."})
    max_grad_norm: float = field(default=1.0, metadata={"help": "Gradient clipping norm (0: none)."})
    log_kl: bool = field(
        default=True,
        metadata={"help": "Measure KL to the pretrained model at the kept steps for every objective."},
    )
    mixed_precision: str | None = field(
        default=None,
        metadata={"help": "no, fp16 or bf16; none: the launch's setting (accelerate config or flags)."},
    )
    report_to: str = field(default="none", metadata={"help": "Trackers: none, tensorboard, wandb."})
    save_every: int = field(default=1, metadata={"help": "Save a resumable checkpoint every N iterations."})

    def __post_init__(self) -> None:
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {sorted(OBJECTIVES)}, got {self.objective!r}")
        if self.reward_normalisation not in ("whiten", "per_prompt", "center", "none"):
            raise ValueError(
                "reward_normalisation must be whiten, per_prompt, center or none, got "
                f"{self.reward_normalisation!r}"
            )
        if self.reward_normalisation == "per_prompt" and self.samples_per_prompt < 2:
            raise ValueError(
                f"reward_normalisation per_prompt needs samples_per_prompt >= 2, got {self.samples_per_prompt}"
            )
        if self.log_prob_reduction not in ("mean", "sum"):
            raise ValueError(f"log_prob_reduction must be mean or sum, got {self.log_prob_reduction!r}")
        if self.diffusion_loss_kind not in ("l2", "l1"):
            raise ValueError(f"diffusion_loss_kind must be l2 or l1, got {self.diffusion_loss_kind!r}")
        for name in (
            "prompts_per_iteration",
            "samples_per_prompt",
            "sampling_batch_size",
            "minibatch_size",
            "num_inference_steps",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.min_train_step_std < 0:
            raise ValueError(f"min_train_step_std must be >= 0, got {self.min_train_step_std}")
        if self.train_steps_per_trajectory < 0 or self.diffusion_timesteps < 0:
            raise ValueError("train_steps_per_trajectory and diffusion_timesteps must be >= 0")
