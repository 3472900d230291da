"""PPO dynamics that users read off their runs: accumulation windows end with the iteration (so a resume with
accumulation 3 equals an uninterrupted run), the reference is the model at the start of the RL stage with
LoRA too, the adaptive KL controller counts samples, a zero reward moves nothing, and one accelerator
serves a whole run."""

from collections import defaultdict

import pytest
import torch
from test_ppo_trainer import WordTeacher

from align.ares.reward import SentenceTeacherReward
from align.data import load_sample_scienceqa, rationale_target
from align.generate import SamplingConfig
from align.models import LoraSettings, load_policy
from align.rl.rewards import AdaptiveKLController
from align.trainers.distributed import accumulation_windows, make_accelerator, run_precision
from align.trainers.ppo import PPOTrainer
from align.trainers.ppo_config import PPOConfig
from align.trainers.reward_fns import SequenceReward
from align.trainers.rollout import ValueHead, forward_tokens
from align.trainers.sft import SFTConfig, sft_train

PROBLEMS = load_sample_scienceqa("train")[:8]


def _config(tmp_path, **kw):
    base = dict(
        output_dir=str(tmp_path),
        prompts_per_iteration=4,
        sampling=SamplingConfig(num_samples=2, max_new_tokens=10),
        ppo_epochs=2,
        minibatch_size=3,
        learning_rate=1e-3,
        save_every=0,
    )
    return PPOConfig(**{**base, **kw})


def test_accumulation_windows_end_with_the_iteration():
    assert accumulation_windows(7, 3) == [
        (False, 1.0),
        (False, 1.0),
        (True, 1.0),
        (False, 1.0),
        (False, 1.0),
        (True, 1.0),
        (True, 3.0),  # a window of one: its gradient is its own mean, and it steps
    ]
    assert [sync for sync, _ in accumulation_windows(4, 1)] == [True] * 4


def test_resume_with_accumulation_three_equals_an_uninterrupted_run(tiny_lm_path, tmp_path):
    reward = SentenceTeacherReward(WordTeacher("the"))
    kw = dict(gradient_accumulation_steps=3, save_every=1)  # 8 samples / 3 = 3 minibatches x 2 epochs
    straight = load_policy(str(tiny_lm_path), dtype="float32")
    PPOTrainer(straight, reward, _config(tmp_path / "a", **kw), PROBLEMS).train(3)
    first = load_policy(str(tiny_lm_path), dtype="float32")
    PPOTrainer(first, reward, _config(tmp_path / "b", **kw), PROBLEMS).train(2)
    resumed = load_policy(str(tiny_lm_path), dtype="float32")
    trainer = PPOTrainer(resumed, reward, _config(tmp_path / "b", **kw), PROBLEMS)
    trainer.train(3)
    assert trainer.iteration == 3
    for a, b in zip(straight.model.parameters(), resumed.model.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_lora_reference_is_the_model_at_the_start_of_round_two(tiny_lm_path, tmp_path):
    """Round 1 (RL, then SFT) moves the adapter; round 2's first rollout has KL exactly 0 to its reference."""
    policy = load_policy(str(tiny_lm_path), lora=LoraSettings(r=4, alpha=8, dropout=0.0), dtype="float32")
    reward = SequenceReward(lambda p, t: float(len(t)))
    round1 = PPOTrainer(policy, reward, _config(tmp_path / "r1", ppo_epochs=1), PROBLEMS)
    round1.train(1)
    round1.finish()
    sft_train(
        policy,
        PROBLEMS,
        [rationale_target(p) for p in PROBLEMS],
        SFTConfig(epochs=2, learning_rate=3e-3, output_dir=str(tmp_path / "sft")),
    )
    round2 = PPOTrainer(policy, reward, _config(tmp_path / "r2", ppo_epochs=1), PROBLEMS)
    torch.manual_seed(0)
    chunks = round2.rollout(PROBLEMS[:4], defaultdict(list))
    for chunk in chunks:
        mask = chunk.response_mask.bool()
        assert torch.equal(chunk.old_logp[mask], chunk.ref_logp[mask])  # KL exactly 0 at iteration 0
        with torch.no_grad(), policy.model.disable_adapter():  # the old meaning: the bare base model
            base, _, _ = forward_tokens(policy.model, chunk)
        assert (base[mask] - chunk.ref_logp[mask]).abs().max() > 1e-3
    round2.finish()
    assert list(policy.model.peft_config) == ["default"]  # the frozen reference adapter is gone


def test_adaptive_kl_horizon_is_counted_in_samples(tiny_lm_path, tmp_path):
    policy = load_policy(str(tiny_lm_path), dtype="float32")
    config = _config(tmp_path, adaptive_kl_target=1e-6, adaptive_kl_horizon=100, kl_coef=0.1, ppo_epochs=1)
    trainer = PPOTrainer(policy, SequenceReward(lambda p, t: float(len(t))), config, PROBLEMS)
    history = [trainer.step() for _ in range(2)]
    # 4 prompts x 2 samples = 8 sampled responses per iteration move the coefficient (not ~80 tokens)
    controller = AdaptiveKLController(0.1, 1e-6, 100)
    for metrics in history:
        controller.update(metrics["kl"], 8)
    assert trainer.kl_ctl.value == pytest.approx(controller.value) and controller.value != pytest.approx(0.1)


def test_zero_reward_leaves_the_policy_where_it_was(tiny_lm_path, tmp_path):
    """The value head starts at 0, so with no reward there is no advantage to whiten and KL stays 0. With the
    old random head, its values became advantages, were whitened to unit size, and the policy moved."""
    head = ValueHead(8)
    assert torch.equal(head(torch.randn(2, 3, 8)), torch.zeros(2, 3))
    kls = {}
    for init in ("zero", "random"):
        policy = load_policy(str(tiny_lm_path), dtype="float32")
        config = _config(tmp_path / init, weight_decay=0.0)  # decay alone would shrink the weights
        trainer = PPOTrainer(policy, SequenceReward(lambda p, t: 0.0), config, PROBLEMS)
        if init == "random":
            torch.nn.init.normal_(trainer.value_head.net[-1].weight, std=0.5)
        history = [trainer.step() for _ in range(3)]
        kls[init] = [abs(m["kl"]) for m in history]
        assert all("explained_variance" in m for m in history)
    assert max(kls["zero"]) == 0.0 and kls["random"][-1] > 1e-3, kls


def test_value_warmup_trains_the_value_head_only(tiny_lm_path, tmp_path):
    policy = load_policy(str(tiny_lm_path), dtype="float32")
    before = [p.detach().clone() for p in policy.model.parameters()]
    config = _config(tmp_path, value_warmup_iterations=1, ppo_epochs=2)
    trainer = PPOTrainer(policy, SequenceReward(lambda p, t: float(len(t) > 20)), config, PROBLEMS)
    head_before = [p.detach().clone() for p in trainer.value_head.parameters()]
    trainer.step()
    assert all(torch.equal(a, b) for a, b in zip(before, policy.model.parameters(), strict=True))
    assert any(
        not torch.equal(a, b) for a, b in zip(head_before, trainer.value_head.parameters(), strict=True)
    )
    trainer.step()  # after the warm-up the policy learns
    assert any(not torch.equal(a, b) for a, b in zip(before, policy.model.parameters(), strict=True))


def test_one_accelerator_serves_sections_and_disagreements_are_named(tiny_lm_path, tmp_path):
    assert run_precision({"ppo": None, "sft": "no"}) == "no" and run_precision({"ppo": None}) is None
    with pytest.raises(ValueError, match="ppo.mixed_precision='bf16', sft.mixed_precision='no'"):
        run_precision({"ppo": "bf16", "sft": "no"})
    accelerator = make_accelerator(None)  # the launch's precision (none here)
    policy = load_policy(str(tiny_lm_path), dtype="float32")
    sft_train(policy, PROBLEMS[:2], ["a b.", "c d."], SFTConfig(epochs=1), accelerator=accelerator)
    trainer = PPOTrainer(
        policy,
        SequenceReward(lambda p, t: 1.0),
        _config(tmp_path, ppo_epochs=1),
        PROBLEMS,
        accelerator=accelerator,
    )
    trainer.step()
    with pytest.raises(ValueError, match="ppo.mixed_precision='bf16'.*'no'"):
        PPOTrainer(
            policy,
            SequenceReward(lambda p, t: 1.0),
            _config(tmp_path, mixed_precision="bf16"),
            PROBLEMS,
            accelerator=accelerator,
        )
