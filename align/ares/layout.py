"""Where an ARES run keeps its files: one place that names every path of the run folder."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class RunLayout:
    """The run folder `root`: `ares_state.json`, `stages/<stage>/` (the model after each stage),
    `<stage>/` work folders (PPO checkpoints and metrics, corrections), the feedback cache and the report."""

    root: Path

    @staticmethod
    def slug(stage: str) -> str:
        """A stage name (`round1/rl`) as a folder name (`round1-rl`)."""
        return stage.replace("/", "-")

    @property
    def state(self) -> Path:
        return self.root / "ares_state.json"

    @property
    def feedback_cache(self) -> Path:
        return self.root / "feedback.sqlite"

    @property
    def tiny_model(self) -> Path:
        return self.root / "tiny-vlm"

    def model_dir(self, stage: str) -> Path:
        """The model saved after `stage`."""
        return self.root / "stages" / self.slug(stage)

    def work_dir(self, stage: str) -> Path:
        return self.root / self.slug(stage)

    def ppo_dir(self, stage: str) -> Path:
        """PPO checkpoints and `metrics.jsonl` of an RL stage."""
        return self.work_dir(stage) / "ppo"

    def ppo_metrics(self, stage: str) -> Path:
        return self.ppo_dir(stage) / "metrics.jsonl"

    def corrections(self, stage: str) -> Path:
        """The teacher's corrections written by a `correct` stage (for an `sft` stage: its round's)."""
        return self.work_dir(stage.replace("/sft", "/correct")) / "corrections.jsonl"

    def report(self, name: str = "report.md") -> Path:
        return self.root / name
