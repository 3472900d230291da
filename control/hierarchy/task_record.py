"""A hierarchical task's run record (`<root>/<task>/run_state.json`): the task's result-changing settings at
its first start, checked at every later start, as `control train` does for a run folder.

A later start with other settings is refused, naming each differing field; `--overwrite` empties the task's
folder (every seed's hand-over starts, transition policies, switches and evaluations) and retrains the shared
primitives whose own run folders recorded other settings. Seeds, evaluation settings and the root may change
between starts (a new seed is a new folder; the evaluation is recomputed at every `evaluate`).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from align.run_state import ConfigChanged, RunRecord
from control.hierarchy.config import HierarchyConfig

RECORD = "run_state.json"
NOT_RESULT_CHANGING = ("root", "seeds", "eval_episodes", "fixed_handover_steps", "overwrite")
# fields added after roots were recorded: left out of the record while they hold their defaults, so an older
# root whose task does not use them resumes
ADDED_LATER = (
    "primitive_refine",
    "primitive_candidates",
    "candidate_episodes",
    "candidate_score",
    "chains",
    "chain_episodes",
    "handover_starts",
)


def task_folder(cfg: HierarchyConfig) -> Path:
    return Path(cfg.root) / cfg.task


def open_task_record(cfg: HierarchyConfig, write: bool = True) -> RunRecord:
    """Check (and at the first start write) the task's record; raises `ConfigChanged` for other settings
    unless `cfg.overwrite`, which empties the task's folder first. `write=False` only checks (the report)."""
    settings = dataclasses.asdict(cfg)
    defaults = dataclasses.asdict(HierarchyConfig())
    for name in ADDED_LATER:
        if settings[name] == defaults[name]:
            del settings[name]
    return RunRecord.open(
        task_folder(cfg),
        settings,
        name=RECORD,
        ignore=NOT_RESULT_CHANGING,
        start_over="--overwrite",
        overwrite=cfg.overwrite and write,
        write=write,
    )


def train_run(train_cfg: Any, hooks: Any, overwrite: bool) -> dict[str, Any]:
    """`control.train.train`; with `overwrite`, a run folder that recorded other settings starts over (its
    record is checked before anything in it changes, so the first try leaves it as it was)."""
    from control.train import train

    try:
        return train(train_cfg, hooks)
    except ConfigChanged:
        if not overwrite:
            raise
        return train(dataclasses.replace(train_cfg, overwrite=True), hooks)


def recorded_otherwise(train_cfg: Any, hooks: Any) -> bool:
    """Whether `train_cfg`'s run folder recorded other result-changing settings (checked as `train` checks
    them, without writing): a finished primitive trained with other settings must not be reused silently."""
    from control.train import check_run

    try:
        check_run(train_cfg, hooks)
    except ConfigChanged:
        return True
    return False
