"""Opening a run folder's record (`align.run_state.RunRecord`) in every process of a run, so that all ranks
reach the same verdict (resume, refuse a changed config, start over) and only the main process writes."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from align.run_state import RunFolderError, RunRecord


def _check_clearable(folder: Path, name: str) -> None:
    """`--overwrite` deletes only a folder that holds a run record (the same check `clear_run_folder`
    makes on the main process, made here on every rank so that none waits for a main process that failed)."""
    if folder.is_dir() and any(folder.iterdir()) and not (folder / name).is_file():
        raise RunFolderError(
            f"{folder} is not empty and holds no {name}: not deleting it; choose another output folder"
        )


def open_run_record(
    folder: str | Path,
    config: Mapping[str, Any],
    *,
    name: str,
    ignore: Collection[str] = (),
    overwrite: bool = False,
    accelerator: Any = None,
    keep: Collection[str] = (),
) -> RunRecord:
    """The folder's record for a run with `config`. With an `accelerator` of several processes every rank
    checks the recorded config (the same file, the same verdict), the main process creates or clears the
    record, and the others open it read-only once it is written."""
    folder = Path(folder)
    # the recipes keep all of a run's work in its folder: a start that did none takes a corrected config
    kwargs = {"name": name, "ignore": ignore, "keep": keep, "fresh_if_unused": True}
    if overwrite:
        _check_clearable(folder, name)
    else:
        RunRecord.open(folder, config, write=False, **kwargs)  # raises ConfigChanged on every rank alike
    if accelerator is None or accelerator.num_processes == 1:
        return RunRecord.open(folder, config, overwrite=overwrite, **kwargs)
    record = None
    if accelerator.is_main_process:
        record = RunRecord.open(folder, config, overwrite=overwrite, **kwargs)
    accelerator.wait_for_everyone()
    if record is None:
        record = RunRecord.open(folder, config, write=False, **kwargs)
    return record


def resume_note(record: RunRecord, stages: list[str]) -> str | None:
    """ "resuming from stage X (done: a, b)" for a resumed record with work left; None for a fresh one."""
    if not record.resumed:
        return None
    done = [s for s in stages if record.done(s)]
    left = [s for s in stages if not record.done(s)]
    if not left:
        return f"resuming {record.path.parent}: every stage is done; writing the report again"
    shown = f" (done: {', '.join(done)})" if done else ""
    return f"resuming {record.path.parent} from stage {left[0]}{shown}"
