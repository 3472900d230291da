"""Configuration of the SPPO RLHF runs (Byun & Perrault, 2025, the language experiments): what to train, on
what data, with which reward, for how many iterations and seeds. PPO itself is configured by `PPOConfig`
(section `ppo`), the supervised stages by `TrainSettings` (sections `lm`, `classifier`, `sft`, `reward`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from align.models.loading import LoraSettings
from teacher.names import spec_problem

PAPER_SEEDS = [42, 43, 44, 45, 46]


@dataclass
class PolicySettings:
    """How the RL policy is loaded."""

    lora: LoraSettings | None = field(
        default=None,
        metadata={"help": "LoRA for the PPO stage (`true`: r 64, alpha 128); none: all weights."},
    )
    quantization: str = field(default="", metadata={"help": "'', '4bit' or '8bit' (bitsandbytes, GPU)."})
    dtype: str = field(
        default="float32", metadata={"help": "Policy dtype: float32, bfloat16, float16, auto."}
    )


@dataclass
class EvalSettings:
    """Held-out evaluation after RL (and of the initial policy)."""

    prompts: int = field(default=100, metadata={"help": "Held-out prompts evaluated (0: all)."})
    do_sample: bool = field(
        default=True, metadata={"help": "Sample (top-k as in training) or decode greedily."}
    )
    batch_size: int = field(default=16, metadata={"help": "Prompts per generate() call."})


@dataclass
class ImdbConfig:
    """IMDB positive-sentiment continuation (the paper's setup: GPT-2 policy, DistilBERT reward)."""

    output_dir: str = field(
        default="runs/sppo-imdb", metadata={"help": "Run folder (state, stages, report)."}
    )
    dataset: str = field(
        default="",
        metadata={"help": "stanfordnlp/imdb, or a local file/folder in its layout; empty: our sample."},
    )
    train_split: str = field(
        default="train", metadata={"help": "Reviews split 80/20 into RL prompts and eval."}
    )
    split_seed: int = field(default=42, metadata={"help": "Seed of the 80/20 train/validation shuffle."})
    classifier_eval_split: str = field(
        default="test", metadata={"help": "Split the locally trained classifier is tested on."}
    )
    policy: str = field(
        default="", metadata={"help": "Policy hub id or path (paper: lvwerra/gpt2-imdb); empty: tiny GPT-2."}
    )
    classifier: str = field(
        default="",
        metadata={"help": "Sentiment classifier (paper: lvwerra/distilbert-imdb); empty: train a tiny one."},
    )
    reward_label: str = field(default="POSITIVE", metadata={"help": "Name of the rewarded classifier label."})
    reward_kind: str = field(default="logit", metadata={"help": "logit or prob of that label."})
    reward_includes_prompt: bool = field(
        default=True,
        metadata={"help": "Score prompt + continuation (the authors' code) or the continuation."},
    )
    prompt_tokens: int = field(default=64, metadata={"help": "Prompt length in tokens (left-truncated)."})
    prompt_fraction: float = field(
        default=0.5, metadata={"help": "Share of a review's words used as prompt."}
    )
    max_train_prompts: int = field(default=0, metadata={"help": "Use at most this many RL prompts (0: all)."})
    iterations: int = field(default=60, metadata={"help": "PPO iterations per seed (paper: 60)."})
    seeds: list[int] = field(
        default_factory=lambda: list(PAPER_SEEDS), metadata={"help": "Seeds (paper: 42-46)."}
    )
    policy_settings: PolicySettings = field(
        default_factory=PolicySettings, metadata={"help": "Policy loading."}
    )
    eval: EvalSettings = field(default_factory=EvalSettings, metadata={"help": "Held-out evaluation."})

    def __post_init__(self) -> None:
        if self.reward_kind not in ("logit", "prob"):
            raise ValueError(f"imdb.reward_kind must be 'logit' or 'prob', got {self.reward_kind!r}")
        if not self.seeds:
            raise ValueError("imdb.seeds must name at least one seed")
        if not 0 < self.prompt_fraction <= 1:
            raise ValueError(f"imdb.prompt_fraction must be in (0, 1], got {self.prompt_fraction}")


@dataclass
class TldrConfig:
    """TL;DR summarisation: SFT, a learned reward model, then PPO/SPPO against it."""

    output_dir: str = field(
        default="runs/sppo-tldr", metadata={"help": "Run folder (state, stages, report)."}
    )
    sft_dataset: str = field(
        default="",
        metadata={"help": "trl-lib/tldr, CarperAI/openai_summarize_tldr or a local copy; empty: sample."},
    )
    preference_dataset: str = field(
        default="",
        metadata={
            "help": "trl-lib/tldr-preference, CarperAI/openai_summarize_comparisons or local; empty: sample."
        },
    )
    sft_train_split: str = field(
        default="train", metadata={"help": "SFT training split (also the RL prompts)."}
    )
    sft_eval_split: str = field(
        default="validation", metadata={"help": "Held-out SFT split (loss before/after)."}
    )
    preference_train_split: str = field(default="train", metadata={"help": "Reward-model training split."})
    preference_eval_split: str = field(default="validation", metadata={"help": "Held-out preference split."})
    eval_split: str = field(default="test", metadata={"help": "Split of the posts evaluated after RL."})
    held_out_pairs: int = field(
        default=1000, metadata={"help": "Held-out SFT / preference pairs measured (0: the whole split)."}
    )
    policy: str = field(
        default="", metadata={"help": "Base model that SFT starts from (paper: GPT-J 6B); empty: tiny GPT-2."}
    )
    sft_model: str = field(
        default="", metadata={"help": "An existing SFT summariser: skips the SFT stage (e.g. CarperAI's)."}
    )
    reward_model: str = field(
        default="", metadata={"help": "An existing scalar reward model: skips the reward-model stage."}
    )
    reward_base: str = field(
        default="", metadata={"help": "Model the reward model starts from; empty: the SFT model."}
    )
    reward_quantization: str = field(default="", metadata={"help": "Load the reward model in '4bit'/'8bit'."})
    reward_dtype: str = field(default="float32", metadata={"help": "Reward model dtype when scoring."})
    max_prompt_tokens: int = field(
        default=500,
        metadata={"help": "Posts are shortened to this many tokens, keeping 'TL;DR:' (paper: 500)."},
    )
    max_train_prompts: int = field(default=0, metadata={"help": "Use at most this many RL prompts (0: all)."})
    iterations: int = field(default=200, metadata={"help": "PPO iterations per seed (paper: 200)."})
    seeds: list[int] = field(
        default_factory=lambda: list(PAPER_SEEDS), metadata={"help": "Seeds (paper: 42-46)."}
    )
    judge: str = field(
        default="reference:lexical",
        metadata={"help": "Teacher spec judging samples against the reference summaries (paper: GPT-4)."},
    )
    judge_cache: str = field(
        default="", metadata={"help": "Judge cache file; empty: <output_dir>/judge.sqlite."}
    )
    judge_concurrency: int = field(default=16, metadata={"help": "Concurrent judge requests."})
    policy_settings: PolicySettings = field(
        default_factory=PolicySettings, metadata={"help": "Policy loading."}
    )
    eval: EvalSettings = field(
        default_factory=lambda: EvalSettings(do_sample=False), metadata={"help": "Held-out evaluation."}
    )

    def __post_init__(self) -> None:
        if not self.seeds:
            raise ValueError("tldr.seeds must name at least one seed")
        if problem := spec_problem(self.judge):
            raise ValueError(f"tldr.judge: {problem}")
