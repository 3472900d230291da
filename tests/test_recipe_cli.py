"""The recipes' command line as a user meets it: `--help` describes each recipe (its configs and sections) and
returns without importing torch, from any working directory; bad settings and files exit 2 in one or two lines
naming the flag, field, file and record (no traceback); a run folder refuses a changed config and stays
byte for byte as it was."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from recipes_sections import RECIPES, load_recipe

ROOT = Path(__file__).resolve().parent.parent
HELP_PROBE = """
import json, runpy, sys
path = sys.argv[1]
sys.argv = [path, "--help"]
sys.path.insert(0, str(__import__("pathlib").Path(path).parent))
try:
    runpy.run_path(path, run_name="__main__")
except SystemExit as e:
    code = e.code
print(json.dumps({"code": code, "torch": "torch" in sys.modules, "transformers": "transformers" in sys.modules}))
"""
# recipe -> words its help must use (what it is), and words it must not (another recipe's)
ABOUT = {
    "ares_scienceqa": (["ScienceQA", "ppo.learning_rate"], ["A-OKVQA"]),
    "ares_aokvqa": (["A-OKVQA"], ["ScienceQA"]),
    "sppo_imdb": (["IMDB", "SPPO"], ["TL;DR"]),
    "sppo_tldr": (["TL;DR", "SFT", "reward model"], ["IMDB"]),
    "dlpo_tts": (["DLPO", "text-to-speech", "rl.learning_rate"], ["ppo.", "ScienceQA"]),
    "evaluate": (["win rate", "eval.judge"], ["ppo."]),
}


def env() -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if not k.startswith(("ACCELERATE_", "RANK", "WORLD_SIZE"))}
    out.update(HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false")
    return out


def run(args: list[str], cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, cwd=str(cwd), env=env(), timeout=timeout
    )


def user_error_lines(proc: subprocess.CompletedProcess) -> list[str]:
    """The stderr of a command that must have failed as a user error: exit 2, no traceback, 1-2 lines."""
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-3000:])
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert 1 <= len(lines) <= 2, proc.stderr
    return lines


@pytest.mark.parametrize("name", sorted(ABOUT))
def test_help_describes_the_recipe_without_importing_torch(tmp_path, name):
    proc = run(["-c", HELP_PROBE, str(ROOT / "recipes" / f"{name}.py")], cwd=tmp_path)
    *text, probe = proc.stdout.strip().splitlines()
    help_text = "\n".join(text)
    assert json.loads(probe) == {"code": 0, "torch": False, "transformers": False}, proc.stderr
    must, must_not = ABOUT[name]
    for word in must:
        assert word in help_text, (name, word)
    for word in must_not:
        assert word not in help_text, (name, word)
    recipe = load_recipe(name).RECIPE
    for config in recipe.configs:
        assert f"  {config}" in help_text and (ROOT / "recipes" / "configs" / f"{config}.yaml").is_file()
    for section in recipe.sections:
        assert f"  {section} " in help_text
    assert "--overwrite" in help_text and "--quiet" in help_text


def test_argument_errors_do_not_import_torch(tmp_path):
    probe = HELP_PROBE.replace('"--help"', '"--bogus"')
    proc = run(["-c", probe, str(ROOT / "recipes" / "ares_scienceqa.py")], cwd=tmp_path)
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == {
        "code": 2,
        "torch": False,
        "transformers": False,
    }
    assert "unrecognized arguments: --bogus" in proc.stderr


@pytest.mark.parametrize(
    "name, argv, expected",
    [
        (
            "ares_scienceqa",
            ["--set", "ppo.learnin_rate=1e-5"],
            "--set ppo.learnin_rate=1e-5: PPOConfig has no "
            "field 'learnin_rate' (did you mean 'ppo.learning_rate'?)",
        ),
        (
            "ares_scienceqa",
            ["--set", "ppo.learning_rate=abc"],
            "--set ppo.learning_rate=abc: expected a number",
        ),
        (
            "ares_scienceqa",
            ["--set", "ppo.learning_rate=-1"],
            "--set ppo.learning_rate=-1: ppo.learning_rate must be > 0",
        ),
        ("ares_scienceqa", ["--set", "ares.lora=maybe"], "--set ares.lora=maybe: expected true or false"),
        ("ares_scienceqa", ["--set", "ppo.sampling.num_samples=0"], "ppo.sampling.num_samples must be > 0"),
        (
            "ares_scienceqa",
            ["--config", "nope"],
            "--config nope: no such file or shipped config; shipped "
            "configs: ares_scienceqa_demo, single_gpu_lora, multi_gpu",
        ),
        ("ares_aokvqa", ["--config", "aokvqa_single_gpu_lor"], "(did you mean 'aokvqa_single_gpu_lora'?)"),
        (
            "dlpo_tts",
            ["--set", "ppo.learning_rate=1e-5"],
            "unknown section 'ppo'; sections: run, model, pretrain, rl",
        ),
        ("dlpo_tts", ["--set", "rl.learning_rate=0"], "rl.learning_rate must be > 0, got 0.0"),
        ("dlpo_tts", ["--set", "pretrain.steps=-5"], "pretrain.steps must be > 0, got -5"),
        ("sppo_imdb", ["--set", "imdb.iterations=0"], "imdb.iterations must be > 0, got 0"),
        ("sppo_tldr", ["--set", "sft.learning_rate=-1e-5"], "sft.learning_rate must be > 0"),
        ("sppo_tldr", ["--set", "tldr.seeds"], "--set tldr.seeds: expected section.field=value"),
        ("evaluate", ["--set", "eval.max_problems=-1"], "eval.max_problems must be >= 0"),
        (
            "ares_scienceqa",
            ["--set", "ares.teacher=opnai:gpt-4o"],
            "ares.teacher: unknown teacher backend 'opnai' in spec 'opnai:gpt-4o' (did you mean 'openai'?)",
        ),
        (
            "ares_aokvqa",
            ["--set", "ares.teacher=anthropic"],
            "ares.teacher: teacher spec 'anthropic' names no model",
        ),
        ("evaluate", ["--set", "eval.judge=openai-compatible:http://x"], "eval.judge: teacher spec"),
        (
            "sppo_tldr",
            ["--set", "tldr.judge=reference:cosine"],
            "tldr.judge: teacher spec 'reference:cosine'",
        ),
    ],
)
def test_bad_settings_are_one_line_naming_the_flag(capsys, name, argv, expected):
    code = load_recipe(name).main(argv)
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err, err
    assert err.count("\n") == 1 and expected in err, err


def test_a_yaml_error_blames_the_file_and_a_set_error_blames_set(tmp_path, capsys):
    bad = tmp_path / "mine.yaml"
    bad.write_text("ppo:\n  learning_rate: abc\n")
    assert load_recipe("sppo_imdb").main(["--config", str(bad)]) == 2
    assert f"{bad} [ppo] PPOConfig.learning_rate: expected a number, got 'abc'" in capsys.readouterr().err
    bad.write_text("ppo:\n  learning_rat: 1.0e-5\n")
    assert load_recipe("sppo_imdb").main(["--config", str(bad)]) == 2
    assert "unknown setting(s) ['learning_rat'] for PPOConfig (did you mean 'learning_rate'?)" in (
        capsys.readouterr().err
    )


def bad_reviews(tmp_path: Path) -> Path:
    data = tmp_path / "reviews.jsonl"
    rows = [{"text": "a fine film", "label": 1}, {"text": "dull", "label": 0}, {"text": "no label here"}]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return data


def folder_bytes(folder: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_a_malformed_later_row_and_a_changed_config_are_user_errors(tmp_path, capsys):
    """SPPO IMDB on a local JSONL whose third row lacks `label`: exit 2 naming file, line and field. That start
    did no work, so a corrected command (another learning rate) takes its place instead of being refused; once
    a run has done work, a start with another learning rate is refused, naming the field and --overwrite, and
    leaves every file as it was."""
    data, out = bad_reviews(tmp_path), tmp_path / "run"
    common = ["--set", f"imdb.dataset={data}", "--set", f"imdb.output_dir={out}"]
    imdb = load_recipe("sppo_imdb")
    assert imdb.main(common) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{data}, record 'line 3', field 'label': missing" in err, err
    recorded = json.loads((out / "rlhf_state.json").read_text())
    assert recorded["config"]["imdb"]["dataset"] == str(data) and recorded["done"] == []
    assert imdb.main([*common, "--set", "ppo.learning_rate=1e-4", "--quiet"]) == 2  # taken; the same bad row
    assert "record 'line 3'" in capsys.readouterr().err
    assert json.loads((out / "rlhf_state.json").read_text())["config"]["ppo"]["learning_rate"] == 1e-4
    (out / "seed1").mkdir()  # work in the folder (a stage's output): from now on the config is protected
    before = folder_bytes(out)
    assert imdb.main([*common, "--set", "ppo.learning_rate=2e-4"]) == 2
    err = capsys.readouterr().err
    assert f"{out} holds a run started with another config (ppo.learning_rate: " in err
    assert "-> 0.0002)" in err and "--overwrite" in err and err.count("\n") == 2
    assert folder_bytes(out) == before


@pytest.mark.slow
def test_the_same_errors_from_a_fresh_process(tmp_path):
    """As above through real processes started elsewhere: exit 2, one or two lines, no traceback."""
    data, out = bad_reviews(tmp_path), tmp_path / "run"
    recipe = str(ROOT / "recipes" / "sppo_imdb.py")
    common = ["--set", f"imdb.dataset={data}", "--set", f"imdb.output_dir={out}"]
    (line,) = user_error_lines(run([recipe, *common], cwd=tmp_path))
    assert f"{data}, record 'line 3', field 'label': missing" in line
    before = folder_bytes(out)
    changed = run([recipe, *common, "--set", "ppo.learning_rate=1e-4"], cwd=tmp_path)
    text = " ".join(user_error_lines(changed))
    assert "ppo.learning_rate: " in text and "--overwrite" in text
    assert folder_bytes(out) == before
    (line,) = user_error_lines(run([recipe, "--set", "ppo.learnin_rate=1e-5"], cwd=tmp_path))
    assert "(did you mean 'ppo.learning_rate'?)" in line


def test_recipes_exist_for_every_documented_name():
    assert set(ABOUT) <= set(RECIPES)


def test_a_misspelt_flag_is_an_error_not_an_abbreviation(capsys):
    """`--overwrit` must not delete a run folder as `--overwrite` would (argparse accepts prefixes)."""
    with pytest.raises(SystemExit) as stop:
        load_recipe("ares_scienceqa").main(["--overwrit"])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and "unrecognized arguments: --overwrit (did you mean '--overwrite'?)" in err
