"""Ahead-of-time compiled tensor functions, cached on disk so that a later process loads them in milliseconds.

`torch.compile` pays in every process: importing dynamo and inductor, tracing the function again, checking its
guards on every call (together about half of a compiled PPO minibatch's time, and seconds per process even with
inductor's cache warm). Here a pure function of tensors is traced once (`make_fx` with fake tensors, so nothing
data-dependent is baked in), compiled by AOTInductor into a shared library packaged as `.pt2`, and stored under
a key of everything the trace depended on; later processes load the library through AOTInductor's C++ loader
and call it with a list of tensors, with neither dynamo nor inductor imported.

The key: the caller's description of the function and its inputs (shapes, dtypes, hyperparameters), torch's
version and CPU capability, the thread count (inductor bakes it into the kernels), a digest of the source files
the traced code may run, and the values of exactly the config fields the trace read (recorded at the first
compile through `ConfigReads` and kept in a small index file beside the packages). The cache lives with
inductor's own (`TORCHINDUCTOR_CACHE_DIR`, else `<tmp>/torchinductor_<user>`); loading a package runs its code,
so, as with inductor's cache, the folder is the user's own (created 0700).
"""

from __future__ import annotations

import dataclasses
import functools
import getpass
import hashlib
import json
import os
import platform
import sys
import tempfile
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

FORMAT = 1  # bump when what a package holds changes
Runner = Callable[[list[torch.Tensor]], Sequence[torch.Tensor]]


def cache_dir() -> Path:
    """Where packages are kept: inductor's cache location (the same default as torch's), subfolder
    `ares_control`."""
    root = os.environ.get("TORCHINDUCTOR_CACHE_DIR") or os.path.join(
        tempfile.gettempdir(), f"torchinductor_{getpass.getuser()}"
    )
    return Path(root) / "ares_control"


class ConfigReads:
    """A read-only stand-in for a config dataclass that records the names of the fields read through it, so a
    cache key can hold exactly what a traced function depended on."""

    def __init__(self, cfg: Any):
        object.__setattr__(self, "_cfg", cfg)
        object.__setattr__(self, "read", set())

    def __getattr__(self, name: str) -> Any:
        self.read.add(name)
        return getattr(self._cfg, name)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"the config is read-only while tracing (set {name!r})")


@functools.cache
def source_digest(*sources: str | None) -> str:
    """A digest of the Python files of `sources` (files or folders, relative to the control package or
    absolute; None is skipped): editing any of them compiles afresh."""
    package = Path(__file__).resolve().parent
    paths: list[Path] = []
    for source in filter(None, sources):
        path = package / source
        paths += sorted(path.rglob("*.py")) if path.is_dir() else [path]
    digest = hashlib.sha256()
    for path in paths:
        digest.update(str(path.relative_to(package) if path.is_relative_to(package) else path).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def module_file(fn: Callable) -> str | None:
    """The source file of the module defining `fn` (None for builtins)."""
    module = sys.modules.get(getattr(fn, "__module__", "") or "")
    return getattr(module, "__file__", None)


def _digest(data: dict[str, Any]) -> str:
    text = json.dumps(data, sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()[:40]


def environment_key() -> dict[str, Any]:
    """What a compiled package depends on beside the function: torch, the CPU, the thread count."""
    return {
        "format": FORMAT,
        "torch": torch.__version__,
        "machine": platform.machine(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "threads": torch.get_num_threads(),
    }


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _load(path: Path) -> Runner:
    """AOTInductor's C++ loader (torch's `aoti_load_package` wraps it, but importing it imports inductor)."""
    try:
        loader = torch._C._aoti.AOTIModelPackageLoader(str(path), "model", False, 1, -1)
        return loader.run
    except (AttributeError, TypeError):  # another torch's loader signature: the public API
        from torch._inductor import aoti_load_package

        model = aoti_load_package(str(path))
        return lambda inputs: model(*inputs)


def _compile(graph: torch.fx.GraphModule, inputs: list[torch.Tensor], path: Path) -> None:
    """Export the traced graph and compile it into an AOTInductor package at `path` (atomically)."""
    from torch._inductor import aoti_compile_and_package

    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.pt2")
    try:
        with warnings.catch_warnings():  # torch's own deprecation notice to itself (pytree), once per compile
            warnings.filterwarnings("ignore", message=r".*LeafSpec.* is deprecated", category=FutureWarning)
            program = torch.export.export(graph, tuple(inputs), strict=False)
            aoti_compile_and_package(program, package_path=str(tmp))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@dataclasses.dataclass
class Compiled:
    """A loaded (or traced) function and the names of its outputs."""

    run: Runner
    outputs: list[str]


def compiled(
    name: str,
    trace: Callable[[ConfigReads], tuple[torch.fx.GraphModule, list[str]]],
    inputs: list[torch.Tensor],
    key: dict[str, Any],
    cfg: Any,
    backend: str = "aoti",
    compile_missing: bool = True,
) -> Compiled | None:
    """The function that `trace(cfg_view)` traces, compiled: loaded from the cache when a package for `key` (plus
    the config fields the first trace read, with their values now) exists, else traced, compiled and stored.
    `trace` returns the graph (of `inputs`, a list of example tensors) and its output names. `backend="fx"` runs
    the traced graph itself (no C++ compiler, nothing cached: for tests). Without `compile_missing`, None when
    nothing is cached."""
    folder = cache_dir()
    base = _digest({"name": name, **key, **environment_key()})
    index = folder / f"{name}-{base}.json"
    if backend == "aoti" and index.is_file():
        recorded = json.loads(index.read_text())
        fields = {f: getattr(cfg, f) for f in recorded["config_fields"]}
        package = folder / f"{name}-{_digest({'base': base, 'config': fields})}.pt2"
        if package.is_file():
            try:
                return Compiled(_load(package), recorded["outputs"])
            except RuntimeError:  # a damaged or foreign package: compile it again
                package.unlink(missing_ok=True)
    if not compile_missing:
        return None
    reads = ConfigReads(cfg)
    graph, outputs = trace(reads)
    if backend == "fx":
        return Compiled(lambda tensors: graph(*tensors), outputs)
    fields = {f: getattr(cfg, f) for f in sorted(reads.read)}
    package = folder / f"{name}-{_digest({'base': base, 'config': fields})}.pt2"
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    _compile(graph, inputs, package)
    _write_atomic(index, json.dumps({"config_fields": sorted(fields), "outputs": outputs}))
    return Compiled(_load(package), outputs)
