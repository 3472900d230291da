"""The SPPO RLHF recipes end to end, offline, on our sample data: the IMDB demo raises the sentiment reward with
PPO and with SPPO, GPT-2's first PPO ratio is exactly 1 and the sequence reward sits on the last generated
token under padding on both sides, the TL;DR pipeline runs its three stages and writes its report, and a
finished run resumes without redoing anything."""

import json
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from rlhf_fixtures import single_thread

from align.generate import SamplingConfig
from align.recipe_config import load_sections
from align.rlhf.config import EvalSettings, ImdbConfig, TldrConfig
from align.rlhf.imdb import ImdbRun
from align.rlhf.run import read_metrics
from align.rlhf.tldr import TldrRun
from align.rlhf.training import TrainSettings
from align.trainers.ppo_config import PPOConfig
from align.trainers.rollout import forward_tokens

pytestmark = pytest.mark.usefixtures("one_torch_thread")
RECIPE_CONFIGS = Path(__file__).resolve().parent.parent / "recipes" / "configs"
SECTIONS = {"imdb": ImdbConfig, "ppo": PPOConfig, "lm": TrainSettings, "classifier": TrainSettings}


def demo_ppo(**changes) -> PPOConfig:
    """The IMDB demo config's PPO section (what users run), with test-sized changes."""
    ppo = load_sections("sppo_imdb_demo", SECTIONS, [], RECIPE_CONFIGS)["ppo"]
    return replace(ppo, **changes)


@pytest.fixture(scope="session")
def imdb_models(tmp_path_factory):
    """The demo's `lm` and `classifier` stages (tiny GPT-2 language model of reviews, tiny DistilBERT)."""
    with single_thread():
        cfgs = load_sections("sppo_imdb_demo", SECTIONS, [], RECIPE_CONFIGS)
        root = tmp_path_factory.mktemp("imdb-models")
        run = ImdbRun(
            replace(cfgs["imdb"], output_dir=str(root)),
            cfgs["ppo"],
            replace(cfgs["lm"], epochs=4),
            cfgs["classifier"],
        )
        policy = run.policy_path()
        return {"policy": policy, "classifier": run.classifier_path(policy), "state": run.state.data}


def imdb_run(tmp_path, models, **ppo_changes) -> ImdbRun:
    cfg = ImdbConfig(
        output_dir=str(tmp_path / "run"),
        policy=models["policy"],
        classifier=models["classifier"],
        iterations=12,
        seeds=[42],
        eval=EvalSettings(prompts=16, batch_size=16),
    )
    return ImdbRun(cfg, demo_ppo(**ppo_changes), TrainSettings(), TrainSettings())


def test_imdb_models_are_trained_by_the_recipe(imdb_models):
    results = imdb_models["state"]["results"]
    assert results["lm"]["eval_loss_after"] < 0.5 * results["lm"]["eval_loss_before"]
    assert results["classifier"]["accuracy"] >= 0.9 and results["classifier"]["accuracy_before"] <= 0.6


@pytest.mark.parametrize("loss", ["ppo", "sppo"])
def test_imdb_demo_raises_the_sentiment_reward(imdb_models, tmp_path, loss):
    run = imdb_run(tmp_path, imdb_models, policy_loss=loss)
    run.run()
    curve = [m["reward"] for m in read_metrics(run.seed_dir(42) / "ppo" / "metrics.jsonl")]
    assert len(curve) == 12
    assert sum(curve[-3:]) / 3 > curve[0] + 0.3  # training reward clearly above its start
    results = run.state.data["results"]
    assert results["seed42"]["reward"] > results["initial"]["reward"] + 0.25  # held-out, after RL
    assert results["initial"]["kl"] == 0.0 and results["seed42"]["kl"] > 0
    report = (run.root / "report.md").read_text()
    assert ("SPPO (alpha 0.5, beta 0.4, Z -1)" if loss == "sppo" else "PPO (clipped surrogate)") in report
    assert "| seed 42 |" in report and (run.root / "report.png").is_file()


def test_gpt2_first_ratio_is_one_and_reward_sits_on_the_last_generated_token(imdb_models, tmp_path):
    from align.models.loading import load_policy
    from align.rlhf.imdb_data import imdb_prompts, load_reviews
    from align.rlhf.rewards import BatchedSequenceReward
    from align.trainers.ppo import PPOTrainer
    from align.trainers.prompt_source import TextPrompt

    policy = load_policy(imdb_models["policy"], "causal", dtype="float32")
    reviews = load_reviews(Path(__file__).resolve().parent.parent / "data" / "imdb", "test")[:16]
    prompts = imdb_prompts(reviews, policy.tokenizer, 64)
    cfg = demo_ppo(
        output_dir=str(tmp_path),
        prompts_per_iteration=16,
        save_every=0,
        sampling=SamplingConfig(num_samples=2, max_new_tokens=32, batch_size=16),
    )
    trainer = PPOTrainer(
        policy, BatchedSequenceReward(lambda ps, ts: [1.0 + len(t) for t in ts]), cfg, prompts, TextPrompt()
    )
    torch.manual_seed(0)
    (chunk,) = trainer.rollout(trainer.problems_for(0), defaultdict(list))
    prompt_tokens = chunk.attention_mask[:, : chunk.prompt_len].sum(1)
    lengths = chunk.response_mask.sum(1)
    assert prompt_tokens.min() < prompt_tokens.max()  # left padding of different widths
    assert lengths.min() < chunk.response_mask.shape[1]  # some responses stopped early: right padding
    with torch.no_grad():
        logp, _, _ = forward_tokens(trainer.model, chunk)
    ratio = torch.exp(logp - chunk.old_logp)[chunk.response_mask.bool()]
    assert torch.equal(ratio, torch.ones_like(ratio))
    for row, n, text in zip(chunk.score_rewards, lengths.tolist(), chunk.texts, strict=True):
        assert row.nonzero().flatten().tolist() == [n - 1] and row[n - 1] == 1.0 + len(text)


def test_prompt_longer_than_the_context_stops_the_run(imdb_models, tmp_path):
    run = imdb_run(tmp_path, imdb_models)
    run.cfg.prompt_tokens, run.cfg.prompt_fraction = 0, 1.0  # whole reviews
    run.ppo = replace(run.ppo, sampling=replace(run.ppo.sampling, max_new_tokens=500))
    with pytest.raises(
        ValueError,
        match=r"prompt 'train-\d+' has \d+ tokens; with 500 new tokens that exceeds the 512-token context",
    ):
        run.run()


def test_tldr_pipeline_end_to_end_offline_and_resumes(tmp_path):
    cfg = TldrConfig(
        output_dir=str(tmp_path / "tldr"),
        max_prompt_tokens=200,
        max_train_prompts=16,
        iterations=2,
        seeds=[42],
        judge="reference:lexical",
        eval=EvalSettings(prompts=8, do_sample=False, batch_size=8),
    )
    ppo = PPOConfig(
        chat=False,
        prompts_per_iteration=8,
        minibatch_size=8,
        ppo_epochs=2,
        learning_rate=3e-4,
        gamma=1.0,
        vf_coef=0.1,
        kl_coef=0.002,
        sampling=SamplingConfig(num_samples=1, max_new_tokens=24, batch_size=8),
    )
    sft = TrainSettings(epochs=2, learning_rate=3e-3, batch_size=8, max_length=256, max_examples=160)
    reward = TrainSettings(epochs=1, learning_rate=1e-3, batch_size=8, max_length=256, max_examples=200)
    run = TldrRun(cfg, ppo, sft, reward)
    report = run.run()
    results = report["results"]
    assert set(run.state.data["done"]) == {"sft", "reward_model", "initial", "seed42"}
    assert results["sft"]["eval_loss_after"] < results["sft"]["eval_loss_before"]
    assert results["reward_model"]["pairs"] >= 50 and results["reward_model"]["trained"]
    for stage in ("initial", "seed42"):
        assert 0.0 <= results[stage]["rouge1"] <= 1.0 and results[stage]["judge"]["n"] == 8
        assert results[stage]["judge"]["failed"] == 0
    text = (run.root / "report.md").read_text()
    assert (
        "ROUGE-1" in text
        and "win rate vs ref." in text
        and "held-out pairs ranked chosen over rejected" in text
    )
    assert (run.root / "report.png").is_file() and (run.root / "seed42" / "policy" / "config.json").is_file()

    metrics = (run.root / "seed42" / "ppo" / "metrics.jsonl").read_text()
    state = json.loads((run.root / "rlhf_state.json").read_text())
    again = TldrRun(cfg, ppo, sft, reward).run()  # resumes: every stage is done, nothing is trained again
    assert (run.root / "seed42" / "ppo" / "metrics.jsonl").read_text() == metrics
    assert again["results"] == state["results"]
