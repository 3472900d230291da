"""Configuration of an ARES run: data, model, teacher and the loop's schedule (the PPO and SFT stages have
their own configs, `PPOConfig` and `SFTConfig`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from align.data.select import DATASETS
from align.models.loading import LoraSettings
from align.rl.rewards import NEUTRAL_SCORE
from teacher.names import spec_problem


@dataclass
class AresConfig:
    """What to train, on what, with which teacher, for how many rounds."""

    output_dir: str = field(
        default="runs/ares-demo", metadata={"help": "Run folder (state, stages, report)."}
    )
    dataset: str = field(default="scienceqa", metadata={"help": "scienceqa or aokvqa."})
    data_root: str = field(
        default="", metadata={"help": "Dataset folder in the released layout; empty: our sample data."}
    )
    image_root: str = field(
        default="", metadata={"help": "Image folder (A-OKVQA: COCO root) if not under data_root."}
    )
    train_split: str = field(default="train", metadata={"help": "Split for RL and correction."})
    eval_split: str = field(default="val", metadata={"help": "Split evaluated after every stage."})
    max_train_problems: int = field(
        default=0, metadata={"help": "Use at most this many training problems (0: all)."}
    )
    max_eval_problems: int = field(
        default=0, metadata={"help": "Evaluate at most this many problems (0: all)."}
    )
    model: str = field(
        default="", metadata={"help": "Hub id or local path of the policy; empty: build the tiny VLM."}
    )
    model_kind: str = field(default="auto", metadata={"help": "auto, causal or vlm."})
    lora: LoraSettings | None = field(
        default=None,
        metadata={
            "help": "LoRA adapter settings (r, alpha, dropout, target_modules); `true` for the "
            "defaults (r 64, alpha 128, dropout 0.05), none/false to train all weights."
        },
    )
    quantization: str = field(default="", metadata={"help": "'', '4bit' or '8bit' (bitsandbytes, GPU)."})
    dtype: str = field(default="float32", metadata={"help": "Model dtype: float32, bfloat16, float16, auto."})
    teacher: str = field(
        default="reference", metadata={"help": "Teacher spec, e.g. openai:gpt-4o or reference."}
    )
    cache: str = field(
        default="", metadata={"help": "Feedback cache path; empty: <output_dir>/feedback.sqlite."}
    )
    teacher_concurrency: int = field(default=16, metadata={"help": "Concurrent teacher requests."})
    neutral_score: float = field(
        default=NEUTRAL_SCORE,
        metadata={"help": "Teacher score that gives zero reward (reward = score - this)."},
    )
    rounds: int = field(default=1, metadata={"help": "ARES rounds (RL then correction SFT)."})
    rl_iterations: int = field(default=4, metadata={"help": "PPO iterations per round."})
    correction_max_new_tokens: int = field(
        default=64, metadata={"help": "Length of rationales sent for correction."}
    )
    eval_max_new_tokens: int = field(
        default=64, metadata={"help": "Length of rationales generated for evaluation."}
    )
    seed: int = field(default=0, metadata={"help": "Seed of the whole run."})

    def __post_init__(self) -> None:
        if problem := spec_problem(self.teacher):
            raise ValueError(f"ares.teacher: {problem}")
        if self.dataset not in DATASETS:
            raise ValueError(f"ares.dataset must be one of {DATASETS}, got {self.dataset!r}")
        if self.rounds < 0 or self.rl_iterations < 0:
            raise ValueError("ares.rounds and ares.rl_iterations must be >= 0")
