"""The recipe's config sections, importable by tests."""

from align.ares import AresConfig
from align.trainers.ppo_config import PPOConfig
from align.trainers.sft import SFTConfig

SECTIONS = {"ares": AresConfig, "ppo": PPOConfig, "sft": SFTConfig, "baseline_sft": SFTConfig}
