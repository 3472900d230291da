"""Our entry points' switch for the libraries' own output: weight-loading and shard-writing bars
(transformers), dataset map/filter bars (datasets) and DeepSpeed's CPU-accelerator line, so a run's output
is its own progress and results. Called by the recipes when work starts, never at import of a library module;
download progress (huggingface_hub) and real warnings stay.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

_DEEPSPEED_CPU_LINE = "Setting accelerator to CPU"


class _DropDeepSpeedCpuLine(logging.Filter):
    """DeepSpeed warns at import that it found no GPU and uses the CPU; on a CPU run that is no news."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(_DEEPSPEED_CPU_LINE)


def _silent_bar(factory: Any, args: tuple, kwargs: dict) -> Any:
    return factory(*args, **{**kwargs, "disable": True})


def quiet_libraries() -> None:
    """Silence the bars and notices of transformers, datasets and DeepSpeed in this process and the
    processes it starts (environment switches, for libraries imported later, and their APIs for those
    already imported). A user's own setting of the environment switches wins."""
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # no fork warning from the Rust tokenizers
    logging.getLogger("DeepSpeed").addFilter(_DropDeepSpeedCpuLine())
    from transformers.utils import logging as hf_logging

    if hasattr(hf_logging, "set_tqdm_hook"):  # transformers' own bars only; hub downloads keep theirs
        hf_logging.set_tqdm_hook(_silent_bar)
    else:  # pragma: no cover - older transformers
        hf_logging.disable_progress_bar()
    if "datasets" in sys.modules:
        sys.modules["datasets"].disable_progress_bars()
