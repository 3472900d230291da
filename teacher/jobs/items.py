"""Job input: one JSON line per item, a problem plus the task's fields, read into typed `JobItem`s."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from teacher.backends.base import image_media_type
from teacher.jsonl import JSONLError, listed, read_objects, unknown_fields
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
    """A job file that cannot be used; the message names the file, and the line and field of every bad row."""


# Fields a job row may carry: the problem's, the item id, every task's arguments (one file can serve all three
# tasks), and the other fields of a problem export (`rationales`, `split`, `source`, `meta`: read, not used).
PROBLEM_FIELDS = ("id", "question", "choices", "answer", "context", "image", "lecture", "solution")
KNOWN_FIELDS = frozenset(
    (
        *PROBLEM_FIELDS,
        "item_id",
        *(f for fs in TASK_FIELDS.values() for f in fs),
        "rationales",
        "split",
        "source",
        "meta",
    )
)


def _image(value: Any, base: Path) -> tuple[Path | None, str | None]:
    """The image path (relative to `base`) or None, and what is wrong with it."""
    if not value:
        return None, None
    if not isinstance(value, str):
        return None, f"field 'image' must be a path or null, got {type(value).__name__}"
    image = Path(value) if Path(value).is_absolute() else base / value
    if not image.is_file():
        return None, f"field 'image' names {image}, which does not exist"
    with image.open("rb") as f:
        head = f.read(16)
    try:
        image_media_type(head)
    except ValueError:
        return None, f"field 'image' names {image}, which is not a PNG, JPEG, GIF or WebP image"
    return image, None


def parse_item(obj: dict[str, Any], task: str, where: str, base: Path) -> JobItem:
    """One JSON object into a `JobItem`; `image` paths are relative to `base` (the JSONL's folder). Every
    problem of the row (unknown fields, with "did you mean", missing and ill-typed ones) is named in one
    `JobInputError` line."""
    problems = unknown_fields(obj, KNOWN_FIELDS)
    missing: list[str] = []

    def need(name: str, kind: type | tuple[type, ...], what: str) -> Any:
        if name not in obj:
            missing.append(name)
        elif not isinstance(obj[name], kind) or isinstance(obj[name], bool):
            problems.append(f"field {name!r} must be {what}, got {type(obj[name]).__name__}")
        else:
            return obj[name]
        return None

    def optional_text(name: str) -> str:
        value = obj.get(name)
        if value is not None and not isinstance(value, str):
            problems.append(f"field {name!r} must be a string or null, got {type(value).__name__}")
            return ""
        return value or ""

    choices = need("choices", list, "a list of strings")
    answer = need("answer", int, "an integer (an index into 'choices')")
    if choices is not None and answer is not None and not 0 <= answer < len(choices):
        problems.append(f"field 'answer' = {answer} is not an index into {len(choices)} choices")
    ident = need("id", (str, int), "a string or integer")
    question = need("question", str, "a string")
    image, image_problem = _image(obj.get("image"), base)
    if image_problem:
        problems.append(image_problem)
    context, lecture, solution = (optional_text(name) for name in ("context", "lecture", "solution"))
    if task == "score":
        sentences = need("sentences", list, "a non-empty list of strings")
        if sentences is not None and (not sentences or not all(isinstance(x, str) for x in sentences)):
            problems.append("field 'sentences' must be a non-empty list of strings")
        args: tuple[Any, ...] = (list(sentences or ()),)
    else:
        args = tuple(need(name, str, "a string") for name in TASK_FIELDS[task])
    if missing:
        names = ", ".join(repr(name) for name in missing)
        problems.append(f"missing field{'s' if len(missing) > 1 else ''} {names} (needed for task {task!r})")
    if problems:
        raise JobInputError(f"{where}: " + "; ".join(problems))
    problem = JobProblem(
        id=str(ident),
        question=question,
        choices=tuple(str(c) for c in choices),
        answer=answer,
        context=context,
        image=image,
        lecture=lecture,
        solution=solution,
    )
    item_id = str(obj.get("item_id") or problem.id)
    return JobItem(item_id=item_id, problem=problem, args=args)


def read_items(path: str | Path, task: str) -> list[JobItem]:
    """Every item of a JSONL job file, validated; blank lines are skipped; item ids must be unique. A file
    without items, and any bad row, raise `JobInputError` naming the file and every bad line."""
    if task not in TASKS:
        raise JobInputError(f"unknown task {task!r}; expected one of {TASKS}")
    path = Path(path)
    if not path.exists():
        raise JobInputError(f"{path}: no such file")
    items: list[JobItem] = []
    seen: set[str] = set()
    problems: list[str] = []
    try:
        for where, obj in read_objects(path, errors=problems):
            try:
                item = parse_item(obj, task, where, path.parent)
            except JobInputError as err:
                problems.append(str(err))
                continue
            if item.item_id in seen:
                problems.append(f"{where}: duplicate item_id {item.item_id!r}")
                continue
            seen.add(item.item_id)
            items.append(JobItem(item.item_id, item.problem, item.args, int(where.rsplit(":", 1)[1])))
    except (JSONLError, OSError) as err:
        raise JobInputError(
            f"{path}: cannot be read ({err})" if isinstance(err, OSError) else str(err)
        ) from None
    if problems:
        head = (
            problems[0] if len(problems) == 1 else f"{path}: {len(problems)} bad rows:\n  {listed(problems)}"
        )
        raise JobInputError(head)
    if not items:
        raise JobInputError(f"{path}: no items (the file is empty); expected one JSON object per line")
    return items
