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


HF_TEXT_COLUMNS = (
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


def _hf_dataset(problems, overrides=None):
    """Our released-format samples as a Hugging Face `Dataset` with the hub version's columns and features."""
    datasets = pytest.importorskip("datasets")
    from PIL import Image

    raw = json.loads((sample_root() / "scienceqa" / "problems.json").read_text())
    rows = []
    for p in problems:
        r = raw[p.id]
        row = {k: r[k] for k in ("question", "choices", "answer", *HF_TEXT_COLUMNS)}
        rows.append({**row, "image": Image.open(p.image) if p.image else None})
    for (index, column), value in (overrides or {}).items():
        rows[index][column] = value
    features = datasets.Features(
        {
            "image": datasets.Image(),
            "question": datasets.Value("string"),
            "choices": datasets.Sequence(datasets.Value("string")),
            "answer": datasets.Value("int8"),
            **{k: datasets.Value("string") for k in HF_TEXT_COLUMNS},
        }
    )
    return datasets.Dataset.from_list(rows, features=features)


def _assert_same_problems(hf_problems, released):
    from PIL import Image

    assert len(hf_problems) == len(released)
    for k, (hf, orig) in enumerate(zip(hf_problems, released, strict=True)):
        assert hf.id == f"{hf.split}-{k}" and hf.source == "scienceqa"
        assert (hf.question, hf.choices, hf.answer, hf.context) == (
            orig.question,
            orig.choices,
            orig.answer,
            orig.context,
        )
        assert (hf.lecture, hf.solution, hf.meta) == (orig.lecture, orig.solution, orig.meta)
        assert (hf.image is None) == (orig.image is None)
        if hf.image:
            with Image.open(hf.image) as a, Image.open(orig.image) as b:
                assert a.size == b.size and a.convert("RGB").tobytes() == b.convert("RGB").tobytes()


def test_scienceqa_hf_parquet_copy_matches_released_format(tmp_path):
    released = load_sample_scienceqa("val")
    assert any(p.image for p in released) and any(not p.image for p in released)
    # the hub repo's layout: data/{split}-00000-of-00001.parquet
    (tmp_path / "snapshot" / "data").mkdir(parents=True)
    _hf_dataset(released).to_parquet(
        str(tmp_path / "snapshot" / "data" / "validation-00000-of-00001.parquet")
    )
    problems = load_scienceqa_hf(str(tmp_path / "snapshot"), "validation", image_cache=tmp_path / "images")
    _assert_same_problems(problems, released)
    assert all(p.image.parent == tmp_path / "images" / "validation" for p in problems if p.image)
    hash(problems[0])  # still a frozen, hashable record
    # a second load reuses the cached image files
    again = load_scienceqa_hf(str(tmp_path / "snapshot"), "validation", image_cache=tmp_path / "images")
    assert again == problems


def test_scienceqa_hf_save_to_disk_copy(tmp_path):
    datasets = pytest.importorskip("datasets")
    released = load_sample_scienceqa("test")
    datasets.DatasetDict({"test": _hf_dataset(released)}).save_to_disk(str(tmp_path / "saved"))
    _assert_same_problems(
        load_scienceqa_hf(tmp_path / "saved", "test", image_cache=tmp_path / "img"), released
    )


def test_scienceqa_hf_malformed_row_names_source_record_and_field(tmp_path):
    released = load_sample_scienceqa("val")
    path = tmp_path / "validation.parquet"
    _hf_dataset(released, {(2, "answer"): 9}).to_parquet(str(path))
    with pytest.raises(DatasetFormatError) as err:
        load_scienceqa_hf(str(path), "validation", image_cache=tmp_path / "images")
    message = str(err.value)
    assert "validation.parquet[validation]" in message and "'validation-2'" in message
    assert "'answer'" in message and "outside" in message
    with pytest.raises(DatasetFormatError, match="no parquet or arrow file for split 'train'"):
        load_scienceqa_hf(str(tmp_path), "train")


def test_scienceqa_image_root_variants(tmp_path):
    """A root holding `images/`, a root that is the images folder itself, and an explicit `image_root`."""
    expected = load_sample_scienceqa("val")
    flat = tmp_path / "flat"
    shutil.copytree(sample_root() / "scienceqa" / "images", flat)
    for name in ("problems.json", "pid_splits.json"):
        shutil.copy(sample_root() / "scienceqa" / name, flat / name)
    via_flat = load_scienceqa(flat, "val")
    via_arg = load_scienceqa(sample_root() / "scienceqa", "val", image_root=flat)
    for problems in (via_flat, via_arg):
        assert [p.id for p in problems] == [p.id for p in expected]
        assert [p.image.relative_to(flat) if p.image else None for p in problems] == [
            p.image.relative_to(sample_root() / "scienceqa" / "images") if p.image else None for p in expected
        ]
    minival = load_scienceqa(sample_root() / "scienceqa", "minival")
    assert all(p.split == "minival" and (p.image is None or p.image.is_file()) for p in minival)


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


def test_jsonl_bad_line_names_file_and_line(tmp_path):
    path = tmp_path / "p.jsonl"
    write_problems(path, load_sample_scienceqa("val")[:2])
    path.write_text(path.read_text() + '{"id": "x", "question": "q"}\n')
    with pytest.raises(DatasetFormatError, match=r"p.jsonl, record 'line 3', field 'choices': missing"):
        read_problems(path)


def test_chat_messages_render_through_a_chat_template():
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from transformers import PreTrainedTokenizerFast

    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer(WordLevel({"<unk>": 0}, unk_token="<unk>"))
    )
    tokenizer.chat_template = (
        "{% for m in messages %}<{{ m['role'] }}>{% for part in m['content'] %}"
        "{% if part['type'] == 'image' %}<image>{% else %}{{ part['text'] }}{% endif %}"
        "{% endfor %}{% endfor %}{% if add_generation_prompt %}<assistant>{% endif %}"
    )
    with_image = next(p for p in load_sample_scienceqa("train") if p.image)
    messages = chat_messages(with_image, "QCM-E")
    assert messages[0]["content"][0] == {"type": "image"}
    rendered = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert rendered == f"<user><image>{build_prompt(with_image)}<assistant>"
    text_only = tokenizer.apply_chat_template(chat_messages(with_image, with_image=False), tokenize=False)
    assert text_only == f"<user>{build_prompt(with_image)}"


def test_problem_is_frozen_and_hashable():
    p = load_sample_aokvqa("val")[0]
    assert hash(p) == hash(load_sample_aokvqa("val")[0]) and len({p, p}) == 1
    with pytest.raises(AttributeError):
        p.answer = 0
    with pytest.raises(ValueError, match="outside the 2 choices"):
        Problem(id="bad", question="q", choices=("a", "b"), answer=2)


def test_scienceqa_hf_untyped_parquet_with_image_bytes(tmp_path):
    """A parquet written without `datasets` features stores images as {"bytes", "path"} structs."""
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    released = [p for p in load_sample_scienceqa("test") if p.image][:1]
    record = json.loads((sample_root() / "scienceqa" / "problems.json").read_text())[released[0].id]
    row = {k: [record[k]] for k in ("question", "choices", "answer", *HF_TEXT_COLUMNS)}
    row["image"] = [{"bytes": released[0].image.read_bytes(), "path": None}]
    pq.write_table(pa.table(row), str(tmp_path / "test.parquet"))
    _assert_same_problems(
        load_scienceqa_hf(tmp_path / "test.parquet", "test", image_cache=tmp_path), released
    )
    row["image"] = [{"bytes": b"not an image", "path": None}]
    pq.write_table(pa.table(row), str(tmp_path / "test.parquet"))
    with pytest.raises(DatasetFormatError, match=r"record 'test-0', field 'image': bytes are not a readable"):
        load_scienceqa_hf(tmp_path / "test.parquet", "test", image_cache=tmp_path / "other")
