"""ARES (Byun et al., EMNLP 2024): rounds of PPO with sentence-level teacher feedback, then correction SFT.

`AresConfig` (what to train, with which teacher), `AresRun` (the resumable loop), `SentenceTeacherReward`
(teacher sentence scores as token rewards), `RunLayout` (the run folder) and the run report.
"""

from align.ares.config import AresConfig
from align.ares.layout import RunLayout
from align.ares.loop import AresRun, stage_names
from align.ares.reward import SentenceTeacherReward

__all__ = ["AresConfig", "AresRun", "RunLayout", "SentenceTeacherReward", "stage_names"]
