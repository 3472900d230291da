"""ScienceQA (Lu et al., 2022) in its released layout and in its Hugging Face `datasets` form.

Released layout: `problems.json` (a dict keyed by problem id), `pid_splits.json` (split name -> ids) and images
at `images/{split}/{id}/image.png` (or `{split}/{id}/image.png` directly under the root).
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from align.data.errors import DatasetFormatError
from align.data.fields import RecordReader, read_json
from align.data.problem import Problem

SUBJECT_CODES = {"natural science": "NAT", "social science": "SOC", "language science": "LAN"}


def _image_root(root: Path, image_root: Path | None) -> Path:
    if image_root is not None:
        return Path(image_root)
    return root / "images" if (root / "images").is_dir() else root


def _meta(reader: RecordReader) -> dict[str, Any]:
    meta = {
        key: reader.get(key, str, "") for key in ("subject", "grade", "topic", "category", "skill", "task")
    }
    grade = meta["grade"]
    if grade and not (grade.startswith("grade") and grade[5:].isdigit()):
        raise reader.error("grade", f"expected 'gradeN', got {grade!r}")
    return meta


def _problem(reader: RecordReader, pid: str, split: str, image: Path | None) -> Problem:
    choices = reader.string_list("choices")
    if len(choices) < 2:
        raise reader.error("choices", f"expected at least 2 choices, got {len(choices)}")
    meta = _meta(reader)
    meta["has_image"] = image is not None
    return Problem(
        id=pid,
        question=reader.get("question", str),
        choices=tuple(choices),
        answer=reader.choice_index("answer", choices),
        context=reader.get("hint", str, "", nullable=True) or "",
        image=image,
        lecture=reader.get("lecture", str, "", nullable=True) or "",
        solution=reader.get("solution", str, "", nullable=True) or "",
        split=split,
        source="scienceqa",
        meta=meta,
    )


def load_scienceqa(
    root: str | os.PathLike, split: str = "train", image_root: str | os.PathLike | None = None
) -> list[Problem]:
    """Load one split of ScienceQA as released (`problems.json` + `pid_splits.json` + image folders).

    `split` is any key of `pid_splits.json` (train, val, test, minitrain, ...). An image named in a record
    must exist on disk; a missing one is an error naming the file it looked for.
    """
    root = Path(root)
    problems_path, splits_path = root / "problems.json", root / "pid_splits.json"
    problems = read_json(problems_path)
    splits = read_json(splits_path)
    if not isinstance(problems, dict):
        raise DatasetFormatError(problems_path, "expected a JSON object keyed by problem id")
    if not isinstance(splits, dict):
        raise DatasetFormatError(splits_path, "expected a JSON object mapping split names to id lists")
    if split not in splits:
        raise DatasetFormatError(splits_path, f"no split {split!r}; available: {sorted(splits)}")
    images = _image_root(root, Path(image_root) if image_root else None)
    folder_split = {"minitrain": "train", "minival": "val", "minitest": "test"}.get(split, split)
    out = []
    for pid in splits[split]:
        pid = str(pid)
        if pid not in problems:
            raise DatasetFormatError(splits_path, f"id {pid!r} of split {split!r} is not in problems.json")
        reader = RecordReader(problems_path, pid, problems[pid])
        image_name = reader.get("image", str, None, nullable=True)
        image = None
        if image_name:
            record_split = reader.get("split", str, folder_split)
            image = images / record_split / pid / image_name
            if not image.is_file():
                raise reader.error("image", f"image file not found at {image}")
        out.append(_problem(reader, pid, split, image))
    return out


def _hf_rows(path_or_id: str, split: str) -> Iterable[dict[str, Any]]:
    import datasets

    path = Path(path_or_id)
    if path.is_dir() and ((path / "dataset_dict.json").is_file() or (path / "dataset_info.json").is_file()):
        loaded = datasets.load_from_disk(str(path))
        return loaded[split] if isinstance(loaded, datasets.DatasetDict) else loaded
    if path.exists():
        files = [path]
        if path.is_dir():  # e.g. a snapshot of the hub repo: data/{split}-00000-of-00001.parquet
            files = sorted(path.rglob(f"*{split}*.parquet")) or sorted(path.rglob(f"*{split}*.arrow"))
        if not files:
            raise DatasetFormatError(path, f"no parquet or arrow file for split {split!r} under this folder")
        kind = "arrow" if files[0].suffix == ".arrow" else "parquet"
        return datasets.load_dataset(kind, data_files=[str(f) for f in files], split="train")
    return datasets.load_dataset(path_or_id, split=split)


def _pil_image(reader: RecordReader) -> Any:
    """The row's image as PIL (decoded by `datasets`, or raw `{"bytes", "path"}` from an untyped parquet)."""
    from PIL import Image

    value = reader.record.get("image")
    if value is None or isinstance(value, Image.Image):
        return value
    if isinstance(value, dict) and value.get("bytes"):
        try:
            return Image.open(io.BytesIO(value["bytes"]))
        except OSError as err:
            raise reader.error("image", f"bytes are not a readable image ({err})") from err
    raise reader.error("image", f"expected an image or null, got {type(value).__name__}")


def load_scienceqa_hf(
    path_or_id: str, split: str = "train", image_cache: str | os.PathLike | None = None
) -> list[Problem]:
    """Load ScienceQA in its Hugging Face form (e.g. hub id `derek-thomas/ScienceQA`, or a local parquet/arrow
    copy with the columns image, question, choices, answer, hint, task, grade, subject, topic, category, skill,
    lecture, solution).

    Images arrive as PIL images; they are written once as PNG files under `image_cache` (default
    `~/.cache/ares-align/scienceqa-hf/<hash of the source>`, then `{split}/{row index}.png`) so that
    `Problem.image` stays a path and `Problem` stays hashable. Problem ids are `{split}-{row index}`; a local
    folder is searched (recursively) for `*{split}*.parquet` (or `.arrow`) files, or may be a folder written by
    `Dataset(Dict).save_to_disk`. Hub splits are train / validation / test.
    """
    rows = _hf_rows(str(path_or_id), split)
    local = Path(path_or_id)
    source = str(local.resolve()) if local.exists() else str(path_or_id)
    source_hash = hashlib.sha256(source.encode()).hexdigest()[:12]
    cache = (
        Path(image_cache)
        if image_cache
        else Path.home() / ".cache" / "ares-align" / "scienceqa-hf" / source_hash
    )
    label = f"{path_or_id}[{split}]"
    out = []
    for index, row in enumerate(rows):
        pid = f"{split}-{index}"
        reader = RecordReader(Path(label), pid, dict(row))
        image = None
        pil = _pil_image(reader)
        if pil is not None:
            image = cache / split / f"{index}.png"
            if not image.is_file():  # written once; a temporary name first, so a crash leaves no half file
                image.parent.mkdir(parents=True, exist_ok=True)
                partial = image.with_suffix(".partial.png")
                pil.convert("RGB").save(partial)
                partial.replace(image)
        out.append(_problem(reader, pid, split, image))
    return out
