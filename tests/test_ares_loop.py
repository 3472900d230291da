"""The ARES loop runs end to end offline, writes its report, and resumes without paying the teacher again."""

import json
from pathlib import Path

import pytest

from align.ares import AresConfig, AresRun
from align.generate import SamplingConfig
from align.models import LoraSettings
from align.text import dedupe_sentences
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
        sampling=SamplingConfig(num_samples=2, max_new_tokens=24),
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
    # the report shows the PPO objective beside the mean score, and a KL estimator that is never negative
    assert all(r["kl_k3"] >= 0 for r in rl)
    md = (out / "report.md").read_text()
    assert "objective (sum of score - neutral)" in md and "KL (k3)" in md
    # and says whether the RL stage's effect on the eval score stands out from the noise of the split
    assert "On the eval split (3 problems" in md and "two standard errors" in md
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
    from recipes_sections import load_config

    cfg = load_config("ares_scienceqa_demo", ["ppo.learning_rate=1e-5", "ares.rounds=2"])
    assert cfg["ppo"].learning_rate == 1e-5 and cfg["ares"].rounds == 2 and cfg["baseline_sft"].epochs == 30
    for name in ("single_gpu_lora", "multi_gpu", "aokvqa_single_gpu_lora", "ares_aokvqa_demo"):
        loaded = load_config(name, [])
        assert loaded["ppo"].sampling.num_samples == 4
    assert load_config("single_gpu_lora", [])["ares"].lora == LoraSettings(r=64, alpha=128, dropout=0.05)
    bad = tmp_path / "bad.yaml"
    bad.write_text("ppo:\n  learning_rat: 1\n")
    with pytest.raises(ValueError, match="learning_rat.*PPOConfig"):
        load_config(str(bad), [])


def test_yaml_and_set_values_are_converted_by_the_field_type(tmp_path):
    """PyYAML reads `1e-4` as a string (YAML 1.1 wants a dot); both paths convert by the dataclass type."""
    from recipes_sections import load_config

    path = tmp_path / "c.yaml"
    path.write_text(
        "ppo:\n  kl_coef: 1e-4\n  learning_rate: 2e-5\n  adaptive_kl_target: null\nares:\n  lora: true\n"
    )
    cfg = load_config(str(path), ["ppo.sampling.top_k=20", "ppo.clip_range=1e-1", "ares.lora.r=8"])
    assert cfg["ppo"].kl_coef == 1e-4 and isinstance(cfg["ppo"].kl_coef, float)
    assert cfg["ppo"].learning_rate == 2e-5 and cfg["ppo"].clip_range == 0.1
    assert cfg["ppo"].sampling.top_k == 20 and cfg["ppo"].adaptive_kl_target is None
    assert cfg["ares"].lora == LoraSettings(r=8) and cfg["baseline_sft"] is None
    assert load_config(str(path), ["ares.lora=false"])["ares"].lora is None
    path.write_text("ppo:\n  kl_coef: lots\n")
    with pytest.raises(ValueError, match="PPOConfig.kl_coef.*'lots'"):
        load_config(str(path), [])
    with pytest.raises(ValueError, match="ppo_epochs.*'2.5'"):
        load_config("ares_scienceqa_demo", ["ppo.ppo_epochs=2.5"])
    with pytest.raises(ValueError, match="SamplingConfig has no field 'topk'"):
        load_config("ares_scienceqa_demo", ["ppo.sampling.topk=3"])
    with pytest.raises(ValueError, match="whiten_advantages.*'maybe'"):
        load_config("ares_scienceqa_demo", ["ppo.whiten_advantages=maybe"])


def test_report_judges_a_stage_effect_against_the_eval_noise():
    from align.ares.loop import standard_error
    from align.ares.report import _stage_effect

    assert standard_error([0.0, 1.0]) == pytest.approx(0.5) and standard_error([1.0]) != standard_error([1.0])
    evals = {
        "baseline_sft": {"teacher_score_mean": 0.2, "teacher_score_se": 0.03, "eval_problems": 50},
        "round1/rl": {"teacher_score_mean": 0.4, "teacher_score_se": 0.04, "eval_problems": 50},
    }
    assert "difference +0.200" in _stage_effect(evals, "round1/rl") and "beyond two" in _stage_effect(
        evals, "round1/rl"
    )
    evals["round1/rl"]["teacher_score_mean"] = 0.25
    assert "within two" in _stage_effect(evals, "round1/rl")
    assert _stage_effect(evals, "baseline_sft") == ""
