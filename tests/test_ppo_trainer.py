"""The token-level PPO trainer really learns, resumes exactly, and uses the LoRA-disabled base as reference."""

import pytest
import torch

from align.ares.reward import SentenceTeacherReward
from align.data import load_sample_scienceqa, rationale_target
from align.generate import SamplingConfig
from align.models import LoraSettings, load_policy
from align.trainers.ppo import PPOTrainer
from align.trainers.ppo_config import PPOConfig
from align.trainers.reward_fns import Sample, SequenceReward
from align.trainers.rollout import Chunk, forward_tokens, sample_chunk
from align.trainers.sft import SFTConfig, sft_train
from teacher.records import Feedback

# every sample problem, whatever the split layout: the learning tests depend on the text, not the split
PROBLEMS = sorted(
    load_sample_scienceqa("train") + load_sample_scienceqa("val") + load_sample_scienceqa("test"),
    key=lambda p: int(p.id),
)


class WordTeacher:
    """Scores 1.0 for sentences containing `word`, else 0.0; fails on request for sentences with `fail_on`."""

    def __init__(self, word, fail_on=None):
        self.word, self.fail_on = word, fail_on

    name, model = "word", "word"

    def score(self, sentences):
        if self.fail_on and any(self.fail_on in s for s in sentences):
            return Feedback("score", False, failure="expected 3 scores, got 2")
        return Feedback("score", True, scores=[1.0 if self.word in s.lower() else 0.0 for s in sentences])

    def score_many(self, problems, sentence_lists, concurrency=16):
        return [self.score(s) for s in sentence_lists]


@pytest.fixture(scope="module")
def sft_lm_path(tiny_lm_path, tmp_path_factory):
    """The tiny LM after a short SFT on gold rationales, so that it writes sentence-like text."""
    policy = load_policy(str(tiny_lm_path), dtype="float32")
    torch.manual_seed(0)
    sft_train(
        policy,
        PROBLEMS,
        [rationale_target(p) for p in PROBLEMS],
        SFTConfig(epochs=15, learning_rate=3e-3, output_dir=str(tmp_path_factory.mktemp("sft"))),
    )
    out = tmp_path_factory.mktemp("sft-lm")
    policy.model.save_pretrained(out)
    policy.tokenizer.save_pretrained(out)
    return out


def _config(tmp_path, num_samples=4, max_new_tokens=24, **kw):
    base = dict(
        output_dir=str(tmp_path),
        prompts_per_iteration=8,
        sampling=SamplingConfig(num_samples=num_samples, max_new_tokens=max_new_tokens),
        ppo_epochs=4,
        minibatch_size=16,
        learning_rate=1e-3,
        save_every=0,
    )
    return PPOConfig(**{**base, **kw})


def _scores(trainer, n):
    return [trainer.step()["score_mean"] for _ in range(n)]


@pytest.mark.parametrize("loss", ["ppo", "sppo"])
def test_sentence_reward_for_a_word_goes_up(sft_lm_path, tmp_path, loss):
    policy = load_policy(str(sft_lm_path), dtype="float32")
    extra = dict(policy_loss="sppo", sppo_alpha=0.5, sppo_beta=1.0, sppo_z=-1.0) if loss == "sppo" else {}
    trainer = PPOTrainer(
        policy, SentenceTeacherReward(WordTeacher("bar")), _config(tmp_path, **extra), PROBLEMS
    )
    scores = _scores(trainer, 14)
    start, end = sum(scores[:2]) / 2, sum(scores[-4:]) / 4
    assert start < 0.2 and end > start + 0.3, scores


def test_sppo_with_z_minus_one_and_alpha_plus_beta_one_is_ppo(sft_lm_path, tmp_path):
    runs = []
    for extra in ({}, dict(policy_loss="sppo", sppo_alpha=0.5, sppo_beta=0.5, sppo_z=-1.0)):
        policy = load_policy(str(sft_lm_path), dtype="float32")
        trainer = PPOTrainer(
            policy, SentenceTeacherReward(WordTeacher("the")), _config(tmp_path, **extra), PROBLEMS
        )
        _scores(trainer, 2)
        runs.append(torch.cat([p.detach().flatten() for p in policy.model.parameters()]))
    torch.testing.assert_close(runs[0], runs[1], rtol=1e-4, atol=1e-5)


def test_resume_reaches_the_same_state(sft_lm_path, tmp_path):
    reward = SentenceTeacherReward(WordTeacher("the"))
    straight = load_policy(str(sft_lm_path), dtype="float32")
    PPOTrainer(straight, reward, _config(tmp_path / "a", ppo_epochs=2), PROBLEMS).train(3)
    first = load_policy(str(sft_lm_path), dtype="float32")
    PPOTrainer(first, reward, _config(tmp_path / "b", ppo_epochs=2, save_every=1), PROBLEMS).train(2)
    resumed = load_policy(str(sft_lm_path), dtype="float32")
    trainer = PPOTrainer(resumed, reward, _config(tmp_path / "b", ppo_epochs=2, save_every=1), PROBLEMS)
    trainer.train(3)
    assert trainer.iteration == 3
    for a, b in zip(straight.model.parameters(), resumed.model.parameters(), strict=True):
        torch.testing.assert_close(a, b)


def test_lora_reference_equals_frozen_base(sft_lm_path):
    lora = load_policy(str(sft_lm_path), lora=LoraSettings(r=4, alpha=8, dropout=0.0), dtype="float32")
    with torch.no_grad():
        for name, p in lora.model.named_parameters():
            if "lora_B" in name:
                p.add_(0.3)
    base = load_policy(str(sft_lm_path), dtype="float32")
    torch.manual_seed(0)
    chunk = sample_chunk(lora, PROBLEMS[:2], 2, {"max_new_tokens": 8, "do_sample": True})
    with torch.no_grad():
        with lora.reference():
            ref, _, _ = forward_tokens(lora.model, chunk)
        frozen, _, _ = forward_tokens(base.model, chunk)
        adapted, _, _ = forward_tokens(lora.model, chunk)
    torch.testing.assert_close(ref, frozen)
    assert not torch.allclose(adapted, frozen)


def test_failed_feedback_drops_samples_and_counts_them(sft_lm_path, tmp_path):
    policy = load_policy(str(sft_lm_path), dtype="float32")
    reward = SentenceTeacherReward(WordTeacher("the", fail_on="the"))
    metrics = PPOTrainer(policy, reward, _config(tmp_path, ppo_epochs=1), PROBLEMS).step()
    assert metrics["dropped_samples"] > 0


def test_vlm_ppo_iteration_with_images_and_sequence_reward(tiny_vlm_path, tmp_path):
    policy = load_policy(str(tiny_vlm_path), dtype="float32")
    problems = PROBLEMS[:4] + PROBLEMS[10:12]  # with and without images
    reward = SequenceReward(lambda problem, text: float(len(text) > 10))
    before = [p.detach().clone() for p in policy.model.parameters()]
    metrics = PPOTrainer(
        policy,
        reward,
        _config(tmp_path, prompts_per_iteration=6, num_samples=2, ppo_epochs=1, max_new_tokens=6),
        problems,
    ).step()
    assert metrics["dropped_samples"] == 0 and torch.isfinite(torch.tensor(metrics["value_loss"]))
    assert any(not torch.equal(a, b) for a, b in zip(before, policy.model.parameters(), strict=True))


def test_sample_token_offsets_map_sentences(sft_lm_path):
    policy = load_policy(str(sft_lm_path), dtype="float32")
    torch.manual_seed(1)
    chunk: Chunk = sample_chunk(policy, PROBLEMS[:2], 2, {"max_new_tokens": 20, "do_sample": True})
    for text, ends, mask in zip(chunk.texts, chunk.token_char_ends, chunk.response_mask, strict=True):
        n = int(mask.sum())
        assert ends[n - 1] == len(text) and ends == sorted(ends)
        assert Sample(None, text, ends).num_tokens == chunk.response_mask.shape[1]


def test_report_to_tensorboard_writes_events(sft_lm_path, tmp_path):
    policy = load_policy(str(sft_lm_path), dtype="float32")
    trainer = PPOTrainer(
        policy,
        SentenceTeacherReward(WordTeacher("the")),
        _config(tmp_path, ppo_epochs=1, report_to="tensorboard"),
        PROBLEMS,
    )
    trainer.step()
    trainer.close()
    assert list(tmp_path.rglob("events.out.tfevents.*"))
    assert "score_hist/0.0" in (tmp_path / "metrics.jsonl").read_text()
