"""The sample data shipped in the repository's `data/` folder (our own problems in the released formats)."""

from __future__ import annotations

from pathlib import Path

from align.data.aokvqa import load_aokvqa
from align.data.problem import Problem
from align.data.scienceqa import load_scienceqa


def sample_root() -> Path:
    """The repository's `data/` folder, found by walking up from this package."""
    for parent in Path(__file__).resolve().parents:
        candidate = parent / "data" / "scienceqa" / "problems.json"
        if candidate.is_file():
            return candidate.parent.parent
    raise FileNotFoundError(
        "the sample data folder data/ was not found above the align package; run from a checkout of "
        "ares-align or regenerate it with `python scripts/make_sample_data.py`"
    )


def load_sample_scienceqa(split: str = "train") -> list[Problem]:
    """Our ScienceQA-format samples (splits train/val/test/minitrain/minival/minitest)."""
    return load_scienceqa(sample_root() / "scienceqa", split)


def load_sample_aokvqa(split: str = "train") -> list[Problem]:
    """Our A-OKVQA-format samples (splits train/val)."""
    return load_aokvqa(sample_root() / "aokvqa", split)
