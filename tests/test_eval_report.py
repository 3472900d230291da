"""The evaluation recipe writes JSON, Markdown and PNGs for two models."""

import json

import pytest

from align.eval.evaluate import EvalConfig, evaluate, parse_models
from align.user_errors import UserError


@pytest.mark.parametrize("dataset", ["scienceqa", "aokvqa"])
def test_evaluate_writes_report(tmp_path, tiny_vlm_path, dataset):
    cfg = EvalConfig(
        output_dir=str(tmp_path / "eval"),
        dataset=dataset,
        split="val",
        max_problems=4,
        models=f"base={tiny_vlm_path},other={tiny_vlm_path}",
        judge="reference:lexical",
        ares_run="",
        rationale_tokens=8,
        answer_tokens=4,
    )
    results = evaluate(cfg)
    out = tmp_path / "eval"
    report = json.loads((out / "report.json").read_text())
    assert set(report["models"]) == {"base", "other"} and "other vs base" in report["win_rates"]
    assert report["win_rates"]["other vs base"]["win_rate"] == 0.5  # identical models: every pair is a tie
    assert (out / "accuracy.png").stat().st_size > 1000 and (out / "winrate.png").is_file()
    assert "## Judge win rate" in (out / "report.md").read_text()
    if dataset == "aokvqa":
        assert 0.0 <= results["models"]["base"]["direct_answer_accuracy"] <= 1.0


def test_missing_model_message():
    with pytest.raises(UserError, match="run the ARES demo first"):
        parse_models("a=runs/does-not-exist")
