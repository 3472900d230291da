"""Pick a dataset split by name: the released ScienceQA / A-OKVQA layouts under a folder, or our samples."""

from __future__ import annotations

from align.data.aokvqa import load_aokvqa
from align.data.problem import Problem
from align.data.samples import load_sample_aokvqa, load_sample_scienceqa
from align.data.scienceqa import load_scienceqa

DATASETS = ("scienceqa", "aokvqa")


def load_problems(
    dataset: str, split: str, data_root: str = "", image_root: str = "", limit: int = 0
) -> list[Problem]:
    """The `split` of `dataset` from `data_root` (our sample data when empty), capped at `limit` (0: all)."""
    if dataset == "scienceqa":
        loader, sample = load_scienceqa, load_sample_scienceqa
    elif dataset == "aokvqa":
        loader, sample = load_aokvqa, load_sample_aokvqa
    else:
        raise ValueError(f"dataset must be one of {DATASETS}, got {dataset!r}")
    problems = loader(data_root, split, image_root or None) if data_root else sample(split)
    return problems[:limit] if limit else problems
