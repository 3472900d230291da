"""Checkpoints and snapshots that load without running code: every state we write loads with
`torch.load(..., weights_only=True)` (tensors, numbers, strings, lists, tuples and dicts only), model weights
that users exchange go to safetensors, and data snapshots to JSON.

numpy values inside a state (RNG states, running statistics, replay buffers) are stored as tagged tensors
and come back as numpy arrays, so the trainers' `state_dict()`s need not change. A file that still needs
pickle (written by an older version, or by someone else) is refused with `UnsafeCheckpoint`, which names
the opt-in: `--allow-pickle` on our commands, or `ARES_ALLOW_PICKLE=1` in the environment, for files the
user trusts.
"""

from __future__ import annotations

import collections
import json
import os
import pickle
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from align.run_state import write_text_atomic
from align.user_errors import UserError

ALLOW_PICKLE_ENV = "ARES_ALLOW_PICKLE"
_NDARRAY = "__ndarray__"


class UnsafeCheckpoint(UserError):
    """A file that can only be loaded by unpickling arbitrary objects, which can run code."""

    def __init__(self, path: Path, reason: str):
        super().__init__(
            f"{path}: refused: loading it needs pickle ({reason}), and unpickling a file can run code.\n"
            f"It was written by an older ares-align or by another program; if you trust where it comes "
            f"from, rerun with --allow-pickle (or {ALLOW_PICKLE_ENV}=1)."
        )


def allow_pickle() -> bool:
    """Whether the user opted in to loading pickled files (`--allow-pickle` sets the variable)."""
    return os.environ.get(ALLOW_PICKLE_ENV, "").strip().lower() in ("1", "true", "yes")


def encode(obj: Any) -> Any:
    """`obj` with numpy arrays as tagged tensors, numpy scalars as Python numbers and deques as lists."""
    if isinstance(obj, np.ndarray):
        if obj.dtype == object:
            raise TypeError("an object array cannot be saved without pickle")
        return {
            _NDARRAY: torch.from_numpy(np.ascontiguousarray(obj).astype(_storable(obj.dtype))),
            "dtype": obj.dtype.str,
        }
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, dict):
        return {k: encode(v) for k, v in obj.items()}
    if isinstance(obj, (list, collections.deque)):
        return [encode(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(encode(v) for v in obj)
    return obj


def _storable(dtype: np.dtype) -> np.dtype:
    """The dtype a tensor can hold the array in exactly (unsigned ints beyond uint8 widen to int64)."""
    if dtype.kind == "u" and dtype.itemsize > 1:
        return np.dtype(np.int64)
    if dtype.kind == "b":
        return np.dtype(np.bool_)
    return dtype


def decode(obj: Any) -> Any:
    """The inverse of `encode`."""
    if isinstance(obj, dict):
        if _NDARRAY in obj and set(obj) == {_NDARRAY, "dtype"}:
            return obj[_NDARRAY].numpy().astype(np.dtype(obj["dtype"]))
        return {k: decode(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [decode(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(decode(v) for v in obj)
    return obj


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """Write `state` atomically in a form `load_checkpoint` reads with `weights_only=True`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(encode(state), tmp)
    os.replace(tmp, path)


def load_checkpoint(path: str | Path, map_location: Any = "cpu") -> Any:
    """Load a state written by `save_checkpoint` without unpickling arbitrary objects; a file that needs
    pickle is refused (`UnsafeCheckpoint`) unless the user opted in (`allow_pickle()`)."""
    path = Path(path)
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        if not allow_pickle():
            raise UnsafeCheckpoint(path, _first_line(e)) from None
        warnings.warn(f"{path}: loading with pickle, as --allow-pickle asked", RuntimeWarning, stacklevel=2)
        state = torch.load(path, map_location=map_location, weights_only=False)
    return decode(state)


def _first_line(error: Exception) -> str:
    text = str(error)
    for line in text.splitlines():
        if "GLOBAL" in line or "Unsupported" in line:
            return line.strip().rstrip(".")
    return text.splitlines()[0].strip() if text else type(error).__name__


def save_weights(path: str | Path, tensors: dict[str, torch.Tensor], metadata: dict[str, Any] | None = None):
    """Model weights as safetensors (the format users exchange), atomically; `metadata` as JSON strings."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    save_file(
        {k: v.detach().cpu().contiguous() for k, v in tensors.items()},
        str(tmp),
        metadata={k: json.dumps(v) for k, v in (metadata or {}).items()},
    )
    os.replace(tmp, path)


def load_weights(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(tensors, metadata) of a safetensors file written by `save_weights`."""
    from safetensors import safe_open

    tensors = {}
    with safe_open(str(path), framework="pt") as f:
        for key in f.keys():
            tensors[key] = f.get_tensor(key)
        metadata = {k: json.loads(v) for k, v in (f.metadata() or {}).items()}
    return tensors, metadata


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        if obj.dtype == object:
            raise TypeError("an object array cannot be saved as data")
        return {_NDARRAY: obj.tolist(), "dtype": obj.dtype.str}
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"{type(obj).__name__} is not data")


def _json_hook(obj: dict[str, Any]) -> Any:
    if _NDARRAY in obj and set(obj) == {_NDARRAY, "dtype"}:
        return np.asarray(obj[_NDARRAY], dtype=np.dtype(obj["dtype"]))
    return obj


def save_data(path: str | Path, obj: Any) -> None:
    """Plain data (numbers, strings, lists, dicts, numpy arrays) as JSON, atomically; floats round-trip
    exactly (Python writes the shortest repr that reads back the same)."""
    write_text_atomic(Path(path), json.dumps(obj, default=_json_default))


def load_data(path: str | Path) -> Any:
    """What `save_data` wrote, numpy arrays restored."""
    return json.loads(Path(path).read_text(), object_hook=_json_hook)
