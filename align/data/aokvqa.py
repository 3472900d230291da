"""A-OKVQA (Schwenk et al., 2022) in its released layout: `aokvqa_v1p0_{split}.json` + COCO 2017 images."""

from __future__ import annotations

import os
from pathlib import Path

from align.data.errors import DatasetFormatError
from align.data.fields import RecordReader, read_json
from align.data.problem import Problem


def coco_image_path(image_root: Path, split: str, image_id: int) -> Path:
    """COCO 2017 file layout: `{image_root}/{split}2017/{image_id:012d}.jpg`."""
    return image_root / f"{split}2017" / f"{image_id:012d}.jpg"


def load_aokvqa(
    root: str | os.PathLike, split: str = "val", image_root: str | os.PathLike | None = None
) -> list[Problem]:
    """Load one split of A-OKVQA. `image_root` is the COCO folder (default: `{root}/coco`).

    The test split has no `correct_choice_idx`: it cannot become `Problem`s with answers and is refused.
    The human rationales become `Problem.rationales` (and `solution`, joined); `direct_answers`,
    `difficult_direct_answer` and `image_id` go into `meta`.
    """
    root = Path(root)
    path = root / f"aokvqa_v1p0_{split}.json"
    records = read_json(path)
    if not isinstance(records, list):
        raise DatasetFormatError(path, "expected a JSON list of question records")
    images = Path(image_root) if image_root else root / "coco"
    out = []
    for position, record in enumerate(records):
        record_id = record.get("question_id", f"#{position}") if isinstance(record, dict) else f"#{position}"
        reader = RecordReader(path, str(record_id), record)
        choices = reader.string_list("choices")
        if "correct_choice_idx" not in record:
            raise reader.error("correct_choice_idx", "missing (the A-OKVQA test split has no answers)")
        image_id = reader.get("image_id", int)
        image = coco_image_path(images, split, image_id)
        if not image.is_file():
            raise reader.error("image_id", f"image file not found at {image}")
        rationales = reader.string_list("rationales", [])
        out.append(
            Problem(
                id=reader.get("question_id", str),
                question=reader.get("question", str),
                choices=tuple(choices),
                answer=reader.choice_index("correct_choice_idx", choices),
                image=image,
                solution=" ".join(rationales),
                rationales=tuple(rationales),
                split=split,
                source="aokvqa",
                meta={
                    "direct_answers": reader.string_list("direct_answers", []),
                    "difficult_direct_answer": reader.get("difficult_direct_answer", bool, False),
                    "image_id": image_id,
                    "has_image": True,
                },
            )
        )
    return out
