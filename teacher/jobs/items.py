"""Job input: one JSON line per item, a problem plus the task's fields, read into typed `JobItem`s."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from teacher.backends.base import image_media_type
from teacher.jsonl import JSONLError, read_objects
from teacher.records import TASKS

TASK_FIELDS: dict[str, tuple[str, ...]] = {
    "score": ("sentences",),
    "correct": ("rationale",),
    "judge": ("rationale_a", "rationale_b"),
}


@dataclass(frozen=True)
class JobProblem:
    """A problem read from a job file; satisfies `teacher.records.ProblemLike`."""

    id: str
    question: str
    choices: tuple[str, ...]
    answer: int
    context: str = ""
    image: Path | None = None
    lecture: str = ""
    solution: str = ""


@dataclass(frozen=True)
class JobItem:
    """One unit of work: the problem, the task's arguments (in the order the task takes them), an id."""

    item_id: str
    problem: JobProblem
    args: tuple[Any, ...] = field(default_factory=tuple)
    line: int = 0


class JobInputError(ValueError):
    """A line of a job file that cannot be read; the message names the file, line and field."""


def parse_item(obj: dict[str, Any], task: str, where: str, base: Path) -> JobItem:
    """One JSON object into a `JobItem`; `image` paths are relative to `base` (the JSONL's folder)."""

    def need(name: str, kind: type | tuple[type, ...]) -> Any:
        if name not in obj:
            raise JobInputError(f"{where}: missing field {name!r} (needed for task {task!r})")
        if not isinstance(obj[name], kind):
            raise JobInputError(f"{where}: field {name!r} must be {kind}, got {type(obj[name]).__name__}")
        return obj[name]

    choices = need("choices", list)
    answer = need("answer", int)
    if not 0 <= answer < len(choices):
        raise JobInputError(f"{where}: field 'answer' = {answer} is not an index into {len(choices)} choices")
    image = obj.get("image")
    if image:
        image = Path(image) if Path(image).is_absolute() else base / image
        if not image.is_file():
            raise JobInputError(f"{where}: field 'image' names {image}, which does not exist")
        with image.open("rb") as f:
            head = f.read(16)
        try:
            image_media_type(head)
        except ValueError:
            raise JobInputError(
                f"{where}: field 'image' names {image}, which is not a PNG, JPEG, GIF or WebP image"
            ) from None
    problem = JobProblem(
        id=str(need("id", (str, int))),
        question=need("question", str),
        choices=tuple(str(c) for c in choices),
        answer=answer,
        context=obj.get("context") or "",
        image=image or None,
        lecture=obj.get("lecture") or "",
        solution=obj.get("solution") or "",
    )
    if task == "score":
        sentences = need("sentences", list)
        if not sentences or not all(isinstance(s, str) for s in sentences):
            raise JobInputError(f"{where}: field 'sentences' must be a non-empty list of strings")
        args: tuple[Any, ...] = (list(sentences),)
    else:
        args = tuple(need(name, str) for name in TASK_FIELDS[task])
    item_id = str(obj.get("item_id") or problem.id)
    return JobItem(item_id=item_id, problem=problem, args=args)


def read_items(path: str | Path, task: str) -> list[JobItem]:
    """Every item of a JSONL job file, validated; blank lines are skipped; item ids must be unique."""
    if task not in TASKS:
        raise JobInputError(f"unknown task {task!r}; expected one of {TASKS}")
    path = Path(path)
    items: list[JobItem] = []
    seen: set[str] = set()
    try:
        for where, obj in read_objects(path):
            item = parse_item(obj, task, where, path.parent)
            if item.item_id in seen:
                raise JobInputError(f"{where}: duplicate item_id {item.item_id!r}")
            seen.add(item.item_id)
            items.append(JobItem(item.item_id, item.problem, item.args, int(where.rsplit(":", 1)[1])))
    except JSONLError as err:
        raise JobInputError(str(err)) from None
    return items
