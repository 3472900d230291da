"""Settings this machine cannot run, refused when a run starts (not deep inside its first step): fp16 mixed
precision without a CUDA GPU (accelerate would silently train in float32; DeepSpeed's fp16 engine needs
CUDA for its loss scaling) and 4/8-bit quantization without CUDA and bitsandbytes. bf16 runs everywhere
(on CPUs without native bf16 it is slow, not wrong), so it is never refused.

`check_hardware(sections)` reads every setting named `mixed_precision` or ending in `quantization` in a
recipe's config sections (nested ones too) and the precision `accelerate launch` passes to the process, and
raises a `UserError` naming each setting at fault (exit code 2 in the recipes).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
from collections.abc import Iterator, Mapping
from typing import Any

import torch

from align.user_errors import UserError

LAUNCH_PRECISION_ENV = "ACCELERATE_MIXED_PRECISION"  # what `accelerate launch` sets from its config/flags


def _settings(value: Any, where: str) -> Iterator[tuple[str, str, Any]]:
    """(dotted key, field name, value) of every field of a dataclass and of the dataclasses inside it."""
    if not dataclasses.is_dataclass(value) or isinstance(value, type):
        return
    for f in dataclasses.fields(value):
        inner = getattr(value, f.name)
        key = f"{where}.{f.name}"
        yield key, f.name, inner
        yield from _settings(inner, key)


def unsupported_settings(
    sections: Mapping[str, Any],
    cuda: bool | None = None,
    bitsandbytes: bool | None = None,
    launch_precision: str | None = None,
) -> list[str]:
    """One message per setting the machine cannot run (empty when all can run). `cuda`, `bitsandbytes` and
    `launch_precision` default to this machine's and this process's launch."""
    cuda = torch.cuda.is_available() if cuda is None else cuda
    if bitsandbytes is None:
        bitsandbytes = importlib.util.find_spec("bitsandbytes") is not None
    if launch_precision is None:
        launch_precision = os.environ.get(LAUNCH_PRECISION_ENV, "no")
    problems = []
    if launch_precision == "fp16" and not cuda:
        problems.append(
            "accelerate launch: mixed_precision 'fp16' (the accelerate config's `mixed_precision` or "
            "--mixed_precision) needs a CUDA GPU; use bf16 or no on this machine"
        )
    for section, value in sections.items():
        for key, name, setting in _settings(value, section):
            if name == "mixed_precision" and setting == "fp16" and not cuda:
                problems.append(f"{key}: 'fp16' needs a CUDA GPU; use bf16 or no on this machine")
            elif name.endswith("quantization") and setting and not (cuda and bitsandbytes):
                needs = "a CUDA GPU and the bitsandbytes package" if not cuda else "the bitsandbytes package"
                problems.append(f"{key}: {setting!r} needs {needs}; leave it empty on this machine")
    return problems


def check_hardware(sections: Mapping[str, Any]) -> None:
    """Raise a `UserError` naming every setting in `sections` (and the launch) this machine cannot run."""
    problems = unsupported_settings(sections)
    if problems:
        raise UserError("; ".join(problems))
