"""Loaders read the sample data in the released formats and name the file, record and field on bad input."""

import json
import shutil

import pytest

from align.data import (
    DatasetFormatError,
    Problem,
    build_prompt,
    build_target,
    chat_messages,
    load_aokvqa,
    load_sample_aokvqa,
    load_sample_scienceqa,
    load_scienceqa,
    load_scienceqa_hf,
    sample_root,
)
from align.data.jsonl import read_problems, write_problems


def test_scienceqa_samples_round_trip_all_splits():
    raw = json.loads((sample_root() / "scienceqa" / "problems.json").read_text())
    splits = json.loads((sample_root() / "scienceqa" / "pid_splits.json").read_text())
    for split in ("train", "val", "test"):
        problems = load_scienceqa(sample_root() / "scienceqa", split)
        assert [p.id for p in problems] == splits[split]
        for p in problems:
            record = raw[p.id]
            assert p.question == record["question"] and list(p.choices) == record["choices"]
            assert p.answer == record["answer"] and p.context == record["hint"]
            assert p.lecture == record["lecture"] and p.solution == record["solution"]
            assert (p.image is not None) == (record["image"] is not None)
            if p.image:
                assert p.image.is_file() and p.image.name == "image.png" and p.image.parent.name == p.id
            assert p.meta["subject"] == record["subject"] and p.source == "scienceqa"


@pytest.mark.parametrize("split", ["train", "val", "test"])
def test_scienceqa_samples_cover_every_group_in_each_split(split):
    """ScienceQA's accuracy groups (NAT/SOC/LAN, IMG/TXT/NO context, G1-6/G7-12) all occur in every split."""
    problems = load_sample_scienceqa(split)
    assert {p.meta["subject"] for p in problems} == {"natural science", "social science", "language science"}
    assert any(p.image for p in problems)
    assert any(p.context and not p.image for p in problems)
    assert any(not p.image and not p.context for p in problems)
    grades = {int(p.meta["grade"][5:]) for p in problems}
    assert min(grades) <= 6 < max(grades)


def test_scienceqa_sample_sizes():
    sizes = {split: len(load_sample_scienceqa(split)) for split in ("train", "val", "test")}
    assert sizes == {"train": 18, "val": 6, "test": 6}


def test_aokvqa_samples_round_trip():
    for split, n in (("train", 12), ("val", 8)):
        raw = json.loads((sample_root() / "aokvqa" / f"aokvqa_v1p0_{split}.json").read_text())
        problems = load_sample_aokvqa(split)
        assert len(problems) == n
        for p, record in zip(problems, raw, strict=True):
            assert p.id == record["question_id"] and p.answer == record["correct_choice_idx"]
            assert (
                list(p.rationales) == record["rationales"]
                and p.meta["direct_answers"] == record["direct_answers"]
            )
            assert p.image.is_file() and p.image.name == f"{record['image_id']:012d}.jpg"


def _copy_scienceqa(tmp_path):
    root = tmp_path / "sqa"
    shutil.copytree(sample_root() / "scienceqa", root)
    return root


def test_scienceqa_malformed_answer_names_file_record_and_field(tmp_path):
    root = _copy_scienceqa(tmp_path)
    problems = json.loads((root / "problems.json").read_text())
    problems["101"]["answer"] = 7
    (root / "problems.json").write_text(json.dumps(problems))
    with pytest.raises(DatasetFormatError) as err:
        load_scienceqa(root, "train")
    message = str(err.value)
    assert (
        "problems.json" in message and "'101'" in message and "'answer'" in message and "outside" in message
    )


def test_scienceqa_missing_field_and_bad_json(tmp_path):
    root = _copy_scienceqa(tmp_path)
    problems = json.loads((root / "problems.json").read_text())
    del problems["102"]["choices"]
    (root / "problems.json").write_text(json.dumps(problems))
    with pytest.raises(DatasetFormatError, match=r"record '102', field 'choices': missing"):
        load_scienceqa(root, "train")
    (root / "problems.json").write_text("{not json")
    with pytest.raises(DatasetFormatError, match=r"problems.json: not valid JSON"):
        load_scienceqa(root, "train")
    with pytest.raises(DatasetFormatError, match=r"no split 'nope'"):
        load_scienceqa(sample_root() / "scienceqa", "nope")


def test_scienceqa_missing_image_is_named(tmp_path):
    root = _copy_scienceqa(tmp_path)
    (root / "images" / "train" / "100" / "image.png").unlink()
    with pytest.raises(DatasetFormatError, match=r"record '100', field 'image': image file not found"):
        load_scienceqa(root, "train")


def test_aokvqa_malformed_names_file_record_and_field(tmp_path):
    root = tmp_path / "aok"
    shutil.copytree(sample_root() / "aokvqa", root)
    records = json.loads((root / "aokvqa_v1p0_val.json").read_text())
    records[2]["choices"] = "not a list"
    (root / "aokvqa_v1p0_val.json").write_text(json.dumps(records))
    with pytest.raises(DatasetFormatError) as err:
        load_aokvqa(root, "val")
    message = str(err.value)
    assert (
        "aokvqa_v1p0_val.json" in message and records[2]["question_id"] in message and "'choices'" in message
    )
    records = json.loads((sample_root() / "aokvqa" / "aokvqa_v1p0_val.json").read_text())
    del records[0]["correct_choice_idx"]
    (root / "aokvqa_v1p0_val.json").write_text(json.dumps(records))
    with pytest.raises(DatasetFormatError, match="correct_choice_idx"):
        load_aokvqa(root, "val")


def test_scienceqa_hf_parquet_copy_matches_released_format(tmp_path):
    datasets = pytest.importorskip("datasets")
    from PIL import Image

    released = load_sample_scienceqa("val")
    raw = json.loads((sample_root() / "scienceqa" / "problems.json").read_text())
    rows = []
    for p in released:
        r = raw[p.id]
        rows.append(
            {
                **{
                    k: r[k]
                    for k in (
                        "question",
                        "choices",
                        "answer",
                        "hint",
                        "task",
                        "grade",
                        "subject",
                        "topic",
                        "category",
                        "skill",
                        "lecture",
                        "solution",
                    )
                },
                "image": Image.open(p.image) if p.image else None,
            }
        )
    features = datasets.Features(
        {
            "image": datasets.Image(),
            "question": datasets.Value("string"),
            "choices": datasets.Sequence(datasets.Value("string")),
            "answer": datasets.Value("int8"),
            **{
                k: datasets.Value("string")
                for k in (
                    "hint",
                    "task",
                    "grade",
                    "subject",
                    "topic",
                    "category",
                    "skill",
                    "lecture",
                    "solution",
                )
            },
        }
    )
    datasets.Dataset.from_list(rows, features=features).to_parquet(str(tmp_path / "validation-00000.parquet"))
    problems = load_scienceqa_hf(str(tmp_path), "validation", image_cache=tmp_path / "images")
    assert len(problems) == len(released)
    for hf, orig in zip(problems, released, strict=True):
        assert (hf.question, hf.choices, hf.answer, hf.context) == (
            orig.question,
            orig.choices,
            orig.answer,
            orig.context,
        )
        assert (hf.image is None) == (orig.image is None)
        if hf.image:
            assert Image.open(hf.image).size == Image.open(orig.image).size


def test_prompts_follow_mm_cot_formats():
    p = Problem(
        id="x",
        question="Which is a metal?",
        choices=("wood", "iron"),
        answer=1,
        context="",
        lecture="Metals conduct.",
        solution="Iron is a metal.",
    )
    assert (
        build_prompt(p, "QCM-E") == "Question: Which is a metal?\nContext: N/A\nOptions: (A) wood (B) iron\n"
    )
    assert build_target(p, "QCM-E") == "Solution: Metals conduct. Iron is a metal."
    assert build_target(p, "QCM-A") == "The answer is (B)."
    assert build_target(p, "QCM-EA") == "Solution: Metals conduct. Iron is a metal. The answer is (B)."
    assert build_prompt(p, "QCMG-A", "Iron is shiny.").endswith("Solution: Iron is shiny.\n")
    with pytest.raises(ValueError, match="needs the rationale"):
        build_prompt(p, "QCMG-A")
    with pytest.raises(ValueError, match="unknown prompt format"):
        build_prompt(p, "QA")
    assert chat_messages(p)[0]["content"] == [{"type": "text", "text": build_prompt(p)}]


def test_jsonl_round_trip(tmp_path):
    problems = load_sample_scienceqa("val")
    write_problems(tmp_path / "p.jsonl", problems)
    assert read_problems(tmp_path / "p.jsonl") == problems
