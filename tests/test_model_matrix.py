"""The model matrix: every family users train (tiny random models from the real classes), with and without
LoRA, goes through rollout (left padding, images of several sizes), a PPO update, an SFT step, and save and
reload; training forward passes score exactly what generation sampled and the first PPO ratio is exactly 1."""

from collections import defaultdict

import pytest
import torch

from align.data import load_sample_scienceqa, rationale_target
from align.generate import SamplingConfig
from align.models import LoraSettings, load_policy
from align.models.inputs import encode
from align.models.tiny_zoo import TINY_FAMILIES, VLM_FAMILIES
from align.models.tokens import suppressed_token_ids
from align.trainers.ppo import PPOTrainer
from align.trainers.ppo_config import PPOConfig
from align.trainers.reward_fns import SequenceReward
from align.trainers.rollout import forward_tokens, sample_chunk
from align.trainers.sft import SFTConfig, sft_train

SAMPLES = load_sample_scienceqa("train")
_IMAGES = sorted((p for p in SAMPLES if p.image), key=lambda p: len(p.question + p.context))
_TEXTS = sorted((p for p in SAMPLES if not p.image), key=lambda p: len(p.question + p.context))
WITH_IMAGE, TEXT_ONLY = [_IMAGES[0], _IMAGES[-1]], [_TEXTS[0], _TEXTS[-1]]  # prompts of unequal length
LORA = LoraSettings(r=4, alpha=8, dropout=0.0)


def _problems(family):
    return WITH_IMAGE + TEXT_ONLY if family in VLM_FAMILIES else TEXT_ONLY + WITH_IMAGE[:1]


def _params(policy):
    return {n: p.detach().clone() for n, p in policy.model.named_parameters() if p.requires_grad}


# LoRA runs of the shipped configs' families stay in the default run; the other LoRA runs are slow ones
# (`.ci/run` runs them after the default suite)
CASES = [pytest.param(family, False, id=f"{family}-full") for family in sorted(TINY_FAMILIES)] + [
    pytest.param(
        family,
        True,
        id=f"{family}-lora",
        marks=() if family in ("llava", "qwen2_vl") else pytest.mark.slow,
    )
    for family in sorted(TINY_FAMILIES)
]


@pytest.mark.parametrize("family,lora", CASES)
def test_family_rollout_ppo_sft_save_and_reload(family, lora, tiny_family_path, tmp_path):
    path = tiny_family_path(family)
    policy = load_policy(str(path), lora=LORA if lora else None, dtype="float32")
    assert policy.is_vlm == (family in VLM_FAMILIES)
    problems = _problems(family)

    # rollout: left padding, generation log-probs equal the training forward pass's, no special tokens
    groups = [WITH_IMAGE, TEXT_ONLY] if policy.is_vlm else [problems]
    for group in groups:
        torch.manual_seed(0)
        kwargs = {"max_new_tokens": 6, "do_sample": True, "output_logits": True}
        chunk = sample_chunk(policy, group, 2, kwargs)
        prompt_tokens = chunk.attention_mask[:, : chunk.prompt_len].sum(1)
        assert prompt_tokens.min() < prompt_tokens.max(), "expected left padding in the batch"
        mask = chunk.response_mask.bool()
        with torch.no_grad():
            logp, _, _ = forward_tokens(policy.model, chunk)
        torch.testing.assert_close(logp[mask], chunk.generation_logp[mask], atol=2e-5, rtol=0)
        sampled = set(chunk.input_ids[:, chunk.prompt_len :][mask].tolist())
        assert not sampled & set(suppressed_token_ids(policy))

    # PPO: the first epoch's ratio is exactly 1, then one update moves the trainable weights
    config = PPOConfig(
        output_dir=str(tmp_path / "ppo"),
        prompts_per_iteration=len(problems),
        sampling=SamplingConfig(num_samples=2, max_new_tokens=6),
        ppo_epochs=1,
        minibatch_size=3,
        learning_rate=1e-3,
        save_every=0,
    )
    trainer = PPOTrainer(policy, SequenceReward(lambda p, t: float(len(t) % 3)), config, problems)
    torch.manual_seed(0)
    stats = defaultdict(list)
    chunks = trainer.rollout(problems, stats)
    assert len(chunks) == (2 if policy.is_vlm else 1) and stats["dropped_samples"] == [0] * len(chunks)
    for k, chunk in enumerate(chunks):
        for rows in trainer._minibatches(chunk, 0, k):  # the first update epoch's minibatches
            mb = chunk.select(rows)
            with torch.no_grad():
                logp, _, _ = forward_tokens(trainer.model, mb)
            ratio = torch.exp(logp - mb.old_logp)[mb.response_mask.bool()]
            assert torch.equal(ratio, torch.ones_like(ratio)), f"first ratio off by {(ratio - 1).abs().max()}"
    before = _params(policy)
    trainer.update(chunks, stats)
    after = _params(policy)
    assert any(not torch.equal(before[n], after[n]) for n in before if "value_head" not in n)
    trainer.finish()

    # SFT step on gold rationales (images and text), then save and reload
    targets = [rationale_target(p) for p in problems]
    losses = sft_train(policy, problems, targets, SFTConfig(epochs=1, batch_size=2, learning_rate=1e-3))
    assert len(losses) == 1 and torch.isfinite(torch.tensor(losses[0]))
    out = tmp_path / "saved"
    policy.model.save_pretrained(out)
    policy.processor.save_pretrained(out)
    if lora:
        assert (out / "adapter_config.json").is_file() and not (out / "stage_start_reference").exists()
    reloaded = load_policy(str(out), dtype="float32")
    assert reloaded.has_lora == lora
    group = groups[0]
    images = [p.image for p in group] if policy.is_vlm else None
    batch = encode(policy, [f"Question: {p.question}" for p in group], images)
    with torch.no_grad():
        expected = policy.model(**batch).logits
        got = reloaded.model(**encode(reloaded, [f"Question: {p.question}" for p in group], images)).logits
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-4)
