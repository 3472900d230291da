"""The pieces behind the recipes' run folders and messages: records written by the earlier code still resume,
the fields that may change between starts, the DLPO corpus found from any working directory, every table
format naming the file and record of a bad row, and the progress line a log shows as soon as a stage runs."""

import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from align.ares.loop import migrate_state
from align.data.errors import DatasetFormatError
from align.diffusion.tts_run import migrate_results, resolve_data_dir
from align.progress import Progress
from align.recipe_config import config_record, neutral_fields
from align.rlhf.imdb_data import load_reviews
from align.rlhf.tldr_data import load_preferences
from align.run_state import ConfigChanged, RunRecord
from align.trainers.ppo_config import PPOConfig


def test_an_ares_state_written_by_the_earlier_code_resumes(tmp_path):
    old = {
        "done": ["baseline_sft", "round1/rl"],
        "evals": {"initial": {"teacher_score_mean": 0.1}, "baseline_sft": {"teacher_score_mean": 0.2}},
        "failed_corrections": {"round0/sft": 1},
    }
    path = tmp_path / "ares_state.json"
    path.write_text(json.dumps(old))
    migrate_state(path)
    record = RunRecord.open(tmp_path, {"ppo": {"learning_rate": 1e-5}}, name="ares_state.json")
    assert record.resumed and record.data["done"] == ["baseline_sft", "round1/rl"]
    assert record.result("baseline_sft") == {"teacher_score_mean": 0.2}
    assert record.data["failed_corrections"] == {"round0/sft": 1}
    with pytest.raises(ConfigChanged, match="ppo.learning_rate"):  # from now on the config is recorded
        RunRecord.open(tmp_path, {"ppo": {"learning_rate": 2e-5}}, name="ares_state.json")
    migrate_state(path)  # a record in the new layout is left alone
    assert RunRecord.open(tmp_path, {"ppo": {"learning_rate": 1e-5}}, name="ares_state.json").done(
        "round1/rl"
    )


def test_dlpo_results_written_by_the_earlier_code_become_the_record(tmp_path):
    (tmp_path / "results.json").write_text(
        json.dumps({"ground_truth": {"mos": 3.0}, "dlpo/seed0": {"mos": 2}})
    )
    migrate_results(tmp_path)
    record = RunRecord.open(tmp_path, {"run": {}})
    assert record.done("dlpo/seed0") and record.result("ground_truth") == {"mos": 3.0}


def test_only_result_neutral_fields_and_named_work_lists_may_change():
    config = config_record(
        {"ppo": PPOConfig(), "imdb": {"seeds": [1], "output_dir": "x", "eval": {"prompts": 4}}}
    )
    names = neutral_fields(config, extra=["imdb.seeds"])
    assert {"ppo.output_dir", "ppo.report_to", "ppo.save_every", "imdb.output_dir", "imdb.seeds"} == set(
        names
    )


def test_the_dlpo_sample_corpus_is_found_from_any_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sample = resolve_data_dir("")
    assert (sample / "metadata.csv").is_file()
    assert resolve_data_dir("data/ljspeech-sample") == sample  # the demo config's relative path
    (tmp_path / "mine").mkdir()
    assert (
        resolve_data_dir("mine") == tmp_path / "mine"
        or resolve_data_dir("mine").resolve() == tmp_path / "mine"
    )
    assert resolve_data_dir("/nowhere/LJSpeech-1.1").as_posix() == "/nowhere/LJSpeech-1.1"


def test_every_table_format_names_the_file_and_record_of_a_bad_later_row(tmp_path):
    rows = [{"text": "fine", "label": 1}, {"text": "dull", "label": 0}, {"text": "?", "label": 1}]
    bad = dict(rows[2], label=None)
    jsonl = tmp_path / "a" / "train.jsonl"
    jsonl.parent.mkdir()
    jsonl.write_text("\n".join(json.dumps(r) for r in rows[:2]) + "\n\n" + json.dumps({"text": "?"}) + "\n")
    with pytest.raises(DatasetFormatError, match=r"train\.jsonl, record 'line 4', field 'label': missing"):
        load_reviews(jsonl, "train")
    csv = tmp_path / "b" / "train.csv"
    csv.parent.mkdir()
    csv.write_text('text,label\nfine,1\n"two\nlines",0\nodd,maybe\n')
    with pytest.raises(DatasetFormatError, match=r"train\.csv, record 'line 5', field 'label'.*'maybe'"):
        load_reviews(csv, "train")
    csv.write_text("text,label\nfine,1\nodd,1,extra\n")
    with pytest.raises(DatasetFormatError, match=r"train\.csv, record 'line 3'.*more here"):
        load_reviews(csv, "train")
    shards = tmp_path / "c"
    (shards / "plain_text").mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(rows), shards / "plain_text" / "train-00000-of-00002.parquet")
    pq.write_table(
        pa.Table.from_pylist([rows[0], bad]), shards / "plain_text" / "train-00001-of-00002.parquet"
    )
    with pytest.raises(DatasetFormatError, match=r"train-00001-of-00002\.parquet, record 'row index 1'"):
        load_reviews(shards, "train")
    js = tmp_path / "d" / "validation.json"
    js.parent.mkdir()
    pairs = [{"prompt": "p", "chosen": "a", "rejected": "b"}, {"prompt": "p", "chosen": 3, "rejected": "b"}]
    js.write_text(json.dumps(pairs))
    with pytest.raises(
        DatasetFormatError, match=r"validation\.json, record 'record index 1', field 'chosen'"
    ):
        load_preferences(js, "validation")
    jsonl.write_text(json.dumps(rows[0]) + "\n[1, 2]\n")
    with pytest.raises(DatasetFormatError, match=r"record 'line 2': expected an object"):
        load_reviews(jsonl, "train")


def test_a_log_shows_the_first_step_at_once_then_periodic_lines():
    out = io.StringIO()
    with Progress(10, "round1/rl", unit="iteration", stream=out, interval_s=3600) as bar:
        bar.update(1, reward=0.5)
        bar.update(1, reward=0.6)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("round1/rl: 1/10 iterations (10%)") and "ETA" in lines[0]
    assert lines[1].startswith("round1/rl: 2/10 iterations") and len(lines) == 2  # the close line, once
