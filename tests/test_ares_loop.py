"""The ARES loop runs end to end offline, writes its report, and resumes without paying the teacher again."""

import json
import subprocess
import sys
from pathlib import Path

from align.ares import AresConfig, AresRun, dedupe_sentences
from align.trainers.ppo_config import PPOConfig
from align.trainers.sft import SFTConfig

ROOT = Path(__file__).resolve().parent.parent


def _run(tmp_path, tiny_vlm_path):
    cfg = AresConfig(
        output_dir=str(tmp_path / "run"),
        model=str(tiny_vlm_path),
        teacher="reference:lexical",
        rl_iterations=2,
        max_train_problems=8,
        max_eval_problems=3,
        correction_max_new_tokens=24,
        eval_max_new_tokens=24,
    )
    ppo = PPOConfig(
        prompts_per_iteration=4,
        num_samples=2,
        max_new_tokens=24,
        ppo_epochs=2,
        minibatch_size=8,
        learning_rate=3e-4,
    )
    return AresRun(cfg, ppo, SFTConfig(epochs=2, learning_rate=1e-3), SFTConfig(epochs=5, learning_rate=3e-3))


def test_ares_loop_runs_reports_and_resumes_without_new_teacher_calls(tmp_path, tiny_vlm_path):
    run = _run(tmp_path, tiny_vlm_path)
    report = run.run()
    out = tmp_path / "run"
    assert report["done"] == ["baseline_sft", "round1/rl", "round1/correct", "round1/sft"]
    assert (out / "report.md").read_text().startswith("# ARES run") and (out / "report.png").is_file()
    corrections = [
        json.loads(x) for x in (out / "round1-correct" / "corrections.jsonl").read_text().splitlines()
    ]
    assert len(corrections) == 8 and all(c["ok"] for c in corrections)
    rl = report["rl"]["round1/rl"]
    assert len(rl) == 2 and all("score_mean" in r for r in rl)
    paid = len(run.teacher.cache)
    # a run killed before its last stage resumes there: redo SFT + evaluation, no new teacher request
    state = json.loads((out / "ares_state.json").read_text())
    state["done"].remove("round1/sft")
    (out / "ares_state.json").write_text(json.dumps(state))
    again = _run(tmp_path, tiny_vlm_path)
    again.run()
    assert len(again.teacher.cache) == paid
    assert json.loads((out / "ares_state.json").read_text())["done"][-1] == "round1/sft"


def test_dedupe_sentences():
    assert dedupe_sentences("A b. A b. C d.") == "A b. C d."


def test_demo_recipe_config_is_valid_and_errors_are_clear(tmp_path):
    from recipes_sections import SECTIONS

    from align.recipe_config import load_sections

    cfg = load_sections("ares_scienceqa_demo", SECTIONS, ["ppo.learning_rate=1e-5", "ares.rounds=2"])
    assert cfg["ppo"].learning_rate == 1e-5 and cfg["ares"].rounds == 2 and cfg["baseline_sft"].epochs == 30
    for name in ("single_gpu_lora", "multi_gpu", "aokvqa_single_gpu_lora", "ares_aokvqa_demo"):
        load_sections(name, SECTIONS, [])
    bad = tmp_path / "bad.yaml"
    bad.write_text("ppo:\n  learning_rat: 1\n")
    try:
        load_sections(str(bad), SECTIONS, [])
    except ValueError as err:
        assert "learning_rat" in str(err) and "PPOConfig" in str(err)
    else:
        raise AssertionError("a misspelt setting must fail")


def test_recipe_help_runs():
    out = subprocess.run(
        [sys.executable, str(ROOT / "recipes" / "ares_scienceqa.py"), "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0 and "--set" in out.stdout
