"""The forward pass PPO trains with (`align.trainers.scoring`) computes what the plain forward computed before
the speed work (one pass over whole sequences, every layer's hidden states, a float32 log-softmax over the
vocabulary: kept here as the reference) on every model of the matrix, with and without LoRA; prompts shared
by several samples run once; the first update micro-step trained on the scoring pass's forward gives the same
weights as recomputing it; generation with a shared prefill draws the same samples."""

import inspect
from collections import defaultdict

import pytest
import torch

import align.trainers.scoring as scoring
from align.data import load_sample_scienceqa
from align.generate import SamplingConfig
from align.models import LoraSettings, load_policy
from align.models.inputs import encode, position_ids_from_mask
from align.models.tiny_zoo import TINY_FAMILIES, VLM_FAMILIES
from align.models.tokens import generation_settings
from align.models.vision_inputs import join_rows
from align.rl.losses import POLICY_LOSSES
from align.trainers.ppo import PPOTrainer
from align.trainers.ppo_config import PPOConfig
from align.trainers.reward_fns import SequenceReward
from align.trainers.rollout import generate_samples, sample_chunk
from align.trainers.scoring import PolicyWithValue, ValueHead, distinct_prompts, forward_tokens

SAMPLES = load_sample_scienceqa("train")
WITH_IMAGE = [p for p in SAMPLES if p.image][:2]
TEXT_ONLY = [p for p in SAMPLES if not p.image][:2]


def plain_forward(model, value_head, chunk):
    """The PPO forward before the speed work: whole sequences, all hidden states, full log-softmax."""
    kwargs = {"input_ids": chunk.input_ids, "attention_mask": chunk.attention_mask, **chunk.extra}
    kwargs.update(join_rows(chunk.vision))
    hf = scoring.base_model(model)
    if "position_ids" in inspect.signature(hf.forward).parameters and "image_grid_thw" not in kwargs:
        kwargs["position_ids"] = position_ids_from_mask(chunk.attention_mask)
    out = model(**kwargs, output_hidden_states=True, use_cache=False)
    start = chunk.prompt_len - 1
    logits = out.logits[:, start:-1].float()
    targets = chunk.input_ids[:, chunk.prompt_len :]
    logp = torch.log_softmax(logits, dim=-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    values = value_head(out.hidden_states[-1])[:, start:-1] if value_head is not None else None
    return logp, values, logits


def _randomise_adapters(model, seed=0):
    """LoRA's B starts at zero (the adapter is the identity); make it matter."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.copy_(torch.randn(param.shape, generator=generator) * 0.1)


def test_distinct_prompts_keeps_first_seen_order():
    ids = torch.tensor([[0, 5, 6], [0, 7, 8], [0, 5, 6], [9, 9, 9], [0, 7, 8]])
    mask = torch.tensor([[0, 1, 1], [0, 1, 1], [0, 1, 1], [1, 1, 1], [0, 1, 1]])
    first, index = distinct_prompts(ids, mask)
    assert first.tolist() == [0, 1, 3] and index.tolist() == [0, 1, 0, 2, 1]
    same_ids_other_mask = mask.clone()
    same_ids_other_mask[2, 0] = 1  # same tokens, but the first one attended: another prompt
    assert distinct_prompts(ids, same_ids_other_mask)[0].tolist() == [0, 1, 2, 3]


@pytest.mark.parametrize("lora", [False, True], ids=["full", "lora"])
@pytest.mark.parametrize("family", sorted(TINY_FAMILIES))
def test_ppo_forward_equals_the_plain_forward(family, lora, tiny_family_path, monkeypatch):
    policy = load_policy(
        str(tiny_family_path(family)),
        lora=LoraSettings(r=4, alpha=8, dropout=0.0) if lora else None,
        dtype="float32",
    )
    if lora:
        _randomise_adapters(policy.model)
        policy.freeze_reference()
        _randomise_adapters(policy.model, seed=1)  # the policy's adapter now differs from the reference's
    torch.manual_seed(0)
    head = ValueHead(policy.model.config.get_text_config().hidden_size)
    torch.nn.init.normal_(head.net[-1].weight, std=0.5)  # an untrained head predicts 0: nothing to compare
    module = PolicyWithValue(policy.model, head)
    shared = []
    original = scoring._shared_prompt_pass
    monkeypatch.setattr(scoring, "_shared_prompt_pass", lambda *a: shared.append(1) or original(*a))
    groups = [WITH_IMAGE, TEXT_ONLY] if family in VLM_FAMILIES else [TEXT_ONLY + WITH_IMAGE[:1]]
    for group in groups:
        chunk = sample_chunk(policy, group, 2, {"max_new_tokens": 6, "do_sample": True})
        with torch.no_grad():
            got = forward_tokens(module, chunk, with_values=True, with_logits=True)
            expected = plain_forward(policy.model, head, chunk)
            for a, b, what in zip(got, expected, ("log-probs", "values", "logits"), strict=True):
                torch.testing.assert_close(a, b, atol=2e-5, rtol=1e-5, msg=what)
            if lora:  # the reference pass: the stage-start adapter
                with policy.reference():
                    ref, _, _ = forward_tokens(policy.model, chunk)
                    expected_ref, _, _ = plain_forward(policy.model, None, chunk)
                torch.testing.assert_close(ref, expected_ref, atol=2e-5, rtol=1e-5)
                assert (ref - got[0]).abs().max() > 1e-3  # the reference really is another model
    # text models run each prompt once for its two samples; VLM batches take one full pass
    assert bool(shared) == (family not in VLM_FAMILIES)


def _trainer(path, tmp_path, reuse):
    config = PPOConfig(
        output_dir=str(tmp_path),
        prompts_per_iteration=4,
        sampling=SamplingConfig(num_samples=2, max_new_tokens=8),
        ppo_epochs=2,
        minibatch_size=3,
        gradient_accumulation_steps=2,
        learning_rate=1e-3,
        save_every=0,
        reuse_scoring_forward=reuse,
    )
    policy = load_policy(str(path), dtype="float32")
    return PPOTrainer(policy, SequenceReward(lambda p, t: float(len(t) % 5)), config, SAMPLES)


def test_first_micro_step_trained_on_the_scoring_forward_gives_the_same_weights(
    tiny_lm_path, tmp_path, monkeypatch
):
    trainers = {reuse: _trainer(tiny_lm_path, tmp_path / str(reuse), reuse) for reuse in (True, False)}
    metrics, log_ratios = {}, defaultdict(list)
    loss_fn = POLICY_LOSSES["ppo"]

    def recorded(logp, old_logp, advantages, mask, params):
        log_ratios[reuse].append((logp.detach() - old_logp)[mask.bool()])
        return loss_fn(logp, old_logp, advantages, mask, params)

    monkeypatch.setitem(POLICY_LOSSES, "ppo", recorded)
    for reuse, trainer in trainers.items():
        torch.manual_seed(0)
        stats = defaultdict(list)
        chunks = trainer.rollout(trainer.local_problems(0), stats)
        # the first micro-step kept its forward (with its graph) from the scoring pass, only that one
        assert len(trainer.reuse.kept) == (1 if reuse else 0)
        assert all(out[0].requires_grad for _, _, out in trainer.reuse.kept)
        trainer.update(chunks, stats)
        assert trainer.reuse.kept == []
        metrics[reuse] = {k: v for k, v in stats.items() if not k.startswith("time/")}
    params = [dict(t.model.named_parameters()) for t in trainers.values()]
    assert params[0].keys() == params[1].keys()
    moved = [n for n in params[0] if not torch.equal(params[0][n], params[1][n])]
    assert not moved, f"weights differ: {moved[:3]}"
    assert metrics[True] == metrics[False]
    assert metrics[True]["approx_kl"][0] == 0.0  # the first micro-step's ratio is exactly 1
    # every micro-step of the first window (before any optimizer step), kept or recomputed, has ratio
    # exactly 1: the update's forward (with gradients and logits) scores what the scoring pass scored
    for reuse in (True, False):
        window = log_ratios[reuse][:2]
        assert len(window) == 2 and all(r.numel() > 0 and torch.equal(r, torch.zeros_like(r)) for r in window)
        assert any(r.abs().max() > 0 for r in log_ratios[reuse][2:])  # later steps moved: the check can fail


@pytest.mark.parametrize("family", ["llama", "qwen2", "gpt2"])
def test_shared_prefill_draws_the_samples_of_num_return_sequences(family, tiny_family_path, monkeypatch):
    policy = load_policy(str(tiny_family_path(family)), dtype="float32")
    batch = encode(policy, [p.question for p in SAMPLES[:3]])
    settings = {**generation_settings(policy), "max_new_tokens": 12, "do_sample": True, "output_logits": True}
    runs = {}
    for shared in (True, False):
        if not shared:
            monkeypatch.setattr("align.trainers.rollout.shares_prompts", lambda model: False)
        torch.manual_seed(0)
        with torch.no_grad():
            out = generate_samples(policy.model, batch, 3, settings)
        runs[shared] = (out.sequences, torch.stack(out.logits, 1))
    assert torch.equal(runs[True][0], runs[False][0])
    torch.testing.assert_close(runs[True][1], runs[False][1], atol=2e-5, rtol=1e-5)
