"""Two-stage inference runs and an answer model trained on gold rationales beats chance on its training set."""

import torch

from align.data import load_sample_scienceqa
from align.eval.inference import answer_with_rationales, train_answer_model, two_stage
from align.models import load_policy
from align.trainers.sft import SFTConfig


def test_answer_model_learns_from_rationales(tiny_lm_path, tmp_path):
    problems = load_sample_scienceqa("train")
    gold = [p.gold_rationale for p in problems]
    policy = load_policy(
        str(tiny_lm_path), dtype="float32"
    )  # full fine-tune: the tiny LM starts from scratch
    _, before = answer_with_rationales(policy, problems, gold)
    torch.manual_seed(0)
    losses = train_answer_model(
        policy, problems, gold, SFTConfig(epochs=25, learning_rate=3e-3, output_dir=str(tmp_path))
    )
    assert losses[-1] < losses[0] / 3
    _, after = answer_with_rationales(policy, problems, gold)
    accuracy = sum(p == q.answer for p, q in zip(after, problems, strict=True)) / len(problems)
    chance = sum(1 / len(q.choices) for q in problems) / len(problems)
    assert accuracy > chance + 0.25 and sum(p is not None for p in before) <= sum(
        p is not None for p in after
    )


def test_two_stage_with_a_vlm(tiny_vlm):
    problems = load_sample_scienceqa("val")
    out = two_stage(tiny_vlm, tiny_vlm, problems, rationale_tokens=8, answer_tokens=4)
    assert len(out.rationales) == len(out.answers) == len(out.predictions) == len(problems)


def test_answer_model_lora_paper_setting(tiny_lm_path, tmp_path):
    """The paper's answer-model LoRA (r 64, alpha 128, dropout 0.05, all linear layers) trains only adapters."""
    from align.models.loading import LoraSettings

    problems = load_sample_scienceqa("train")[:4]
    policy = load_policy(str(tiny_lm_path), lora=LoraSettings(), dtype="float32")
    config = policy.model.peft_config["default"]
    assert (config.r, config.lora_alpha, config.lora_dropout) == (64, 128, 0.05)
    frozen = {n: p.detach().clone() for n, p in policy.model.named_parameters() if not p.requires_grad}
    torch.manual_seed(0)
    losses = train_answer_model(
        policy,
        problems,
        [p.gold_rationale for p in problems],
        SFTConfig(epochs=3, learning_rate=1e-3, output_dir=str(tmp_path)),
    )
    assert all(torch.isfinite(torch.tensor(losses))) and losses[-1] < losses[0]
    assert all(torch.equal(p, frozen[n]) for n, p in policy.model.named_parameters() if n in frozen)
