"""GPT-2-style models see in training the positions they saw while sampling (left padding), and the PPO
trainer takes prompts that are not MM-CoT problems: raw text without a chat template, or any prompt source."""

from collections import defaultdict
from dataclasses import dataclass

import pytest
import torch

import align.trainers.rollout as rollout
import align.trainers.scoring as scoring
from align.generate import SamplingConfig
from align.models import load_policy
from align.models.inputs import encode
from align.trainers.ppo import PPOTrainer
from align.trainers.ppo_config import PPOConfig
from align.trainers.prompt_source import MMCoTPrompt, Prompt, TextPrompt, as_prompt
from align.trainers.reward_fns import SequenceReward
from align.trainers.sft import SFTConfig, sft_train

REVIEWS = [
    "The film was",
    "I watched this movie with my family and the ending",
    "Acting:",
    "What a slow and long story, the",
]


@dataclass
class Post:
    id: str
    post: str


def _gpt2(tiny_family_path):
    return load_policy(str(tiny_family_path("gpt2")), dtype="float32")


def test_gpt2_training_log_probs_equal_generation_log_probs_with_left_padding(tiny_family_path, monkeypatch):
    policy = _gpt2(tiny_family_path)
    torch.manual_seed(0)
    kwargs = {"max_new_tokens": 10, "do_sample": True, "output_logits": True}
    chunk = rollout.sample_chunk(policy, REVIEWS, 2, kwargs, TextPrompt())
    prompt_tokens = chunk.attention_mask[:, : chunk.prompt_len].sum(1)
    assert prompt_tokens.min() < prompt_tokens.max()  # rows really are left-padded by different amounts
    mask = chunk.response_mask.bool()
    with torch.no_grad():
        logp, _, _ = rollout.forward_tokens(policy.model, chunk)
    torch.testing.assert_close(logp[mask], chunk.generation_logp[mask], atol=1e-5, rtol=0)
    # without positions from the attention mask, GPT-2's absolute position embeddings shift: a real difference
    monkeypatch.setattr(scoring, "accepts_position_ids", lambda model: False)
    with torch.no_grad():
        shifted, _, _ = rollout.forward_tokens(policy.model, chunk)
    assert (shifted[mask] - chunk.generation_logp[mask]).abs().max() > 1e-2


def test_gpt2_raw_text_prompts_need_no_chat_template(tiny_family_path):
    policy = _gpt2(tiny_family_path)
    assert policy.tokenizer.chat_template is None
    batch = encode(policy, REVIEWS[:2])  # chat=None: auto, raw text here
    raw = policy.tokenizer(REVIEWS[1])["input_ids"]
    assert batch["input_ids"][1].tolist()[-len(raw) :] == raw
    with pytest.raises(ValueError, match="no chat template"):
        encode(policy, REVIEWS[:2], chat=True)


def test_ppo_on_gpt2_with_raw_prefixes_has_first_ratio_one_and_updates(tiny_family_path, tmp_path):
    policy = _gpt2(tiny_family_path)
    config = PPOConfig(
        output_dir=str(tmp_path),
        prompts_per_iteration=4,
        sampling=SamplingConfig(num_samples=2, max_new_tokens=8),
        ppo_epochs=1,
        minibatch_size=3,
        learning_rate=1e-3,
        save_every=0,
    )
    seen = []
    reward = SequenceReward(lambda problem, text: seen.append(problem) or float(len(text)))
    trainer = PPOTrainer(policy, reward, config, REVIEWS, TextPrompt())
    torch.manual_seed(0)
    chunks = trainer.rollout(trainer.problems_for(0), defaultdict(list))
    assert set(seen) <= set(REVIEWS) and len(seen) == 8
    for k, chunk in enumerate(chunks):
        for rows in trainer._minibatches(chunk, 0, k):  # the first update epoch's minibatches
            mb = chunk.select(rows)
            with torch.no_grad():
                logp, _, _ = rollout.forward_tokens(trainer.model, mb)
            ratio = torch.exp(logp - mb.old_logp)[mb.response_mask.bool()]
            assert torch.equal(ratio, torch.ones_like(ratio))
    before = [p.detach().clone() for p in policy.model.parameters()]
    trainer.step()
    assert any(not torch.equal(a, b) for a, b in zip(before, policy.model.parameters(), strict=True))


def test_prompt_source_drives_ppo_and_sft_with_the_chat_template(tiny_lm_path, tmp_path):
    """A TL;DR-style source: the post inside an instruction, through the chat template (the tiny Llama has one)."""
    policy = load_policy(str(tiny_lm_path), dtype="float32")
    posts = [Post("a", "My cat sits on the mat all day."), Post("b", "The bus was late again today.")]

    def summarise(post):
        return f"Summarise this post.\n{post.post}\nTL;DR:"

    captured = {}
    original = rollout.encode

    def spy(policy, prompts, images=None, chat=None):
        captured["prompts"], captured["chat"] = prompts, chat
        return original(policy, prompts, images, chat)

    rollout.encode = spy
    try:
        chunk = rollout.sample_chunk(policy, posts, 1, {"max_new_tokens": 4, "do_sample": True}, summarise)
    finally:
        rollout.encode = original
    assert captured["prompts"] == [summarise(p) for p in posts] and chunk.problems == posts
    assert policy.tokenizer.decode(chunk.input_ids[0]).count("<|user|>") == 1  # chat template applied
    losses = sft_train(
        policy,
        posts,
        ["cat on mat", "bus late"],
        SFTConfig(epochs=2, learning_rate=1e-3, output_dir=str(tmp_path)),
        prompt_source=summarise,
    )
    assert len(losses) == 2 and all(torch.isfinite(torch.tensor(losses)))


def test_prompt_forms():
    assert as_prompt("x") == Prompt("x") and as_prompt(("x", "i.png")) == Prompt("x", "i.png")
    assert TextPrompt("post")(Post("a", "hello")) == Prompt("hello")
    with pytest.raises(TypeError, match="prompt source must return"):
        as_prompt(3)
    from align.data import load_sample_scienceqa

    problem = next(p for p in load_sample_scienceqa("train") if p.image)
    prompt = MMCoTPrompt()(problem)
    assert prompt.text.startswith("Question:") and prompt.image == problem.image
