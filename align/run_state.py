"""Run folders a user can trust: one record per run folder, written atomically, holding the result-changing
config recorded at the run's first start, the stages done and what each measured.

A later start whose config differs from the recorded one is refused (`ConfigChanged`, naming every differing
field and the flag that starts over); an unchanged config resumes. Every training command of the project, the
control CLI included, keeps its folder through `RunRecord`. Standard library only, so any entry point can use
it before importing torch.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ABSENT = "<absent>"


def write_text_atomic(path: Path, text: str) -> None:
    """Write `text` to `path` so that a reader (or a killed writer) never sees a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with tmp.open("w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_json_atomic(path: Path, data: Any) -> None:
    write_text_atomic(path, json.dumps(data, indent=1, default=str) + "\n")


def flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings as one level of dotted keys (`{"ppo": {"lr": 1}}` -> `{"ppo.lr": 1}`)."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def _plain(value: Any) -> Any:
    """A value as JSON would give it back (tuples as lists), so recorded and current values compare equal."""
    return json.loads(json.dumps(value, default=str))


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


@dataclass(frozen=True)
class ConfigDifference:
    field: str
    recorded: Any
    current: Any

    def __str__(self) -> str:
        return f"{self.field}: {self.recorded!r} -> {self.current!r}"


def config_differences(
    recorded: Mapping[str, Any], current: Mapping[str, Any], ignore: Collection[str] = ()
) -> list[ConfigDifference]:
    """Every dotted field whose value differs between two configs (a field missing on one side included),
    skipping the fields in `ignore` and everything below them."""

    def ignored(name: str) -> bool:
        return any(name == i or name.startswith(i + ".") for i in ignore)

    old, new = flatten(_plain(dict(recorded))), flatten(_plain(dict(current)))
    return [
        ConfigDifference(name, old.get(name, ABSENT), new.get(name, ABSENT))
        for name in sorted(set(old) | set(new))
        if not ignored(name) and not _same(old.get(name, ABSENT), new.get(name, ABSENT))
    ]


class RunFolderError(Exception):
    """A run folder that cannot be used as asked: a user error, reported in one or two lines."""


class ConfigChanged(RunFolderError):
    """A later start's config differs from the one the run folder recorded at its first start."""

    def __init__(self, folder: Path, differences: list[ConfigDifference], start_over: str):
        self.folder, self.differences, self.start_over = folder, differences, start_over
        shown = "; ".join(str(d) for d in differences[:8])
        more = f" (and {len(differences) - 8} more)" if len(differences) > 8 else ""
        super().__init__(
            f"{folder} holds a run started with another config ({shown}{more}).\n"
            f"Rerun with the recorded settings to resume it, choose another output folder, or add "
            f"{start_over} to delete it and start over."
        )


class RunRecord:
    """`<folder>/<name>`: {"config": ..., "done": [stages], "results": {stage: ...}, "progress": {...}}.

    `open()` creates it at a run's first start and checks the config on every later start. `resumed` tells
    whether the folder held a record before this start; a record opened with `write=False` (the non-main
    ranks of a distributed run) keeps its changes in memory only."""

    def __init__(self, path: Path, data: dict[str, Any], resumed: bool, writable: bool = True):
        self.path, self.data, self.resumed, self.writable = path, data, resumed, writable

    @classmethod
    def open(
        cls,
        folder: str | Path,
        config: Mapping[str, Any],
        *,
        name: str = "run_state.json",
        ignore: Collection[str] = (),
        start_over: str = "--overwrite",
        overwrite: bool = False,
        write: bool = True,
        keep: Collection[str] = (),
        fresh_if_unused: bool = False,
    ) -> RunRecord:
        """The folder's record for a run with `config` (fields in `ignore` may change between starts).

        With `overwrite`, a folder holding an earlier run is emptied first (but for the files named in `keep`,
        e.g. a paid-for feedback cache, which stays valid for any config). `write=False` checks without
        writing (the non-main ranks of a distributed run). With `fresh_if_unused`, a recorded run that did no
        work (no stage, result or progress recorded, and nothing in the folder but the record and `keep`'s
        files: a start that stopped at a mistyped setting) takes the new config instead of refusing it; for
        records whose runs keep all their work in their folder. Raises `ConfigChanged` or `RunFolderError`."""
        folder = Path(folder)
        path = folder / name
        if overwrite and folder.exists() and write:
            clear_run_folder(folder, name, keep)
        if folder.exists() and not folder.is_dir():
            raise RunFolderError(f"{folder} is a file, not a run folder")
        data: dict[str, Any] | None = None
        if path.is_file():
            try:
                data = json.loads(path.read_text())
            except (OSError, json.JSONDecodeError) as e:
                raise RunFolderError(
                    f"{path}: not a readable run record ({e}); {start_over} starts over"
                ) from None
            if not isinstance(data, dict):
                raise RunFolderError(f"{path}: not a run record; {start_over} starts over")
        if data is None or "config" not in data:
            fresh = {"config": _plain(dict(config)), "done": [], "results": {}, "progress": {}}
            if data is not None:  # a record written before configs were recorded: keep its stages
                fresh.update({k: v for k, v in data.items() if k != "config"})
            record = cls(path, fresh, resumed=data is not None, writable=write)
            if write:
                record.save()
            return record
        differences = config_differences(data["config"], config, ignore)
        if differences and fresh_if_unused and _nothing_done(folder, name, keep, data):
            # a start that stopped before any work (a mistyped model, a missing file): nothing to protect
            record = cls(path, {**data, "config": _plain(dict(config))}, resumed=False, writable=write)
            if write:
                record.save()
            return record
        if differences:
            raise ConfigChanged(folder, differences, start_over)
        data.setdefault("done", [])
        data.setdefault("results", {})
        data.setdefault("progress", {})
        return cls(path, data, resumed=True, writable=write)

    @property
    def config(self) -> dict[str, Any]:
        return self.data["config"]

    def done(self, stage: str) -> bool:
        return stage in self.data["done"]

    def result(self, stage: str) -> Any:
        return self.data["results"][stage]

    def record(self, stage: str, result: Any = None) -> None:
        """Mark `stage` done with what it measured, atomically."""
        self.data["results"][stage] = result
        if stage not in self.data["done"]:
            self.data["done"].append(stage)
        self.save()

    def set_progress(self, **values: Any) -> None:
        """Where the run stands (step reached, stopped or finished), atomically."""
        self.data["progress"].update(values)
        self.save()

    def save(self) -> None:
        if self.writable:
            write_json_atomic(self.path, self.data)


def _nothing_done(folder: Path, name: str, keep: Collection[str], data: Mapping[str, Any]) -> bool:
    """Whether a recorded run did no work: no stage done, no result, no progress, and nothing in its folder but
    the record and the files `keep` names (which stay valid for any config)."""
    if any(data.get(key) for key in ("done", "results", "progress")):
        return False
    return all(p.name == name or p.name in keep for p in folder.iterdir())


def clear_run_folder(folder: Path, record_name: str, keep: Collection[str] = ()) -> None:
    """Delete a run folder's contents for `--overwrite`, but for the names in `keep`; refuses a non-empty
    folder that holds no run record (it may be anything of the user's)."""
    if not folder.is_dir() or not any(folder.iterdir()):
        return
    if not (folder / record_name).is_file():
        raise RunFolderError(
            f"{folder} is not empty and holds no {record_name}: not deleting it; choose another output folder"
        )
    for child in folder.iterdir():
        if child.name in keep:
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()
