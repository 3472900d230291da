"""bf16 on the PPO and DLPO paths: log-probs and values stay float32 and within a stated tolerance of float32's
whatever dtype the model computes in (bf16 autocast, bf16 weights as DeepSpeed's bf16 engine casts them, a
bf16-loaded base with LoRA), a PPO step trains with bf16 weights, and settings this machine cannot run (fp16,
4/8-bit without CUDA) are refused when a recipe starts, naming the setting."""

import copy
import json
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest
import torch

from align.data import load_sample_scienceqa, rationale_target
from align.generate import SamplingConfig
from align.models import LoraSettings, load_policy
from align.models.tiny_zoo import TINY_FAMILIES, VLM_FAMILIES
from align.rl.losses import POLICY_LOSSES
from align.trainers.hardware import unsupported_settings
from align.trainers.ppo import PRECISION_FILE, PPOTrainer
from align.trainers.ppo_config import PPOConfig
from align.trainers.reward_fns import SequenceReward
from align.trainers.rollout import forward_tokens, sample_chunk
from align.trainers.scoring import PolicyWithValue, ValueHead
from align.trainers.sft import SFTConfig, sft_train

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = load_sample_scienceqa("train")
WITH_IMAGE = [p for p in SAMPLES if p.image][:2]
TEXT_ONLY = [p for p in SAMPLES if not p.image][:2]
# bf16 keeps 8 significant bits: on the tiny models a token's log-prob (about -6.6 nats) moves by at most
# ~0.004 nats and by ~0.001 on average; the bounds leave a 5x margin
LOGP_MAX_ABS, LOGP_MEAN_ABS = 0.02, 0.005


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("family", sorted(TINY_FAMILIES))
def test_bf16_log_probs_and_values_are_float32_and_near_float32(family, tiny_family_path):
    policy = load_policy(str(tiny_family_path(family)), dtype="float32")
    torch.manual_seed(0)
    chunk = sample_chunk(
        policy,
        WITH_IMAGE if family in VLM_FAMILIES else TEXT_ONLY,
        2,
        {"max_new_tokens": 8, "do_sample": True},
    )
    head = ValueHead(policy.model.config.get_text_config().hidden_size)
    torch.nn.init.normal_(head.net[-1].weight, std=0.1)  # a trained-looking head, not the zero start
    model = PolicyWithValue(policy.model, head).eval()
    mask = chunk.response_mask.bool()
    with torch.no_grad():
        logp, values, _ = forward_tokens(model, chunk, with_values=True)
        with torch.autocast("cpu", dtype=torch.bfloat16):  # what accelerate's bf16 autocast runs
            autocast = forward_tokens(model, chunk, with_values=True)
        cast = forward_tokens(copy.deepcopy(model).to(torch.bfloat16), chunk, with_values=True)  # DeepSpeed
    for got_logp, got_values, _ in (autocast, cast):
        assert got_logp.dtype == got_values.dtype == torch.float32
        err = (got_logp - logp)[mask].abs()
        assert err.max() <= LOGP_MAX_ABS and err.mean() <= LOGP_MEAN_ABS, (err.max(), err.mean())
        assert 0 < err.max()  # it did compute in bf16
        assert (got_values - values)[mask].abs().max() <= 0.05


@pytest.mark.parametrize("lora", [False, True], ids=["full", "lora"])
def test_ppo_step_on_bf16_weights(lora, tiny_lm_path, tmp_path, monkeypatch):
    """A bf16-loaded model (full, or LoRA adapters on a bf16 base) trains through a PPO step: the reference
    computes in the policy's dtype (KL ~0 before the update), the first ratio is exactly 1, the values,
    advantages and losses are float32, the trainable weights move."""
    policy = load_policy(
        str(tiny_lm_path), lora=LoraSettings(r=4, alpha=8, dropout=0.0) if lora else None, dtype="bfloat16"
    )
    config = PPOConfig(
        output_dir=str(tmp_path),
        prompts_per_iteration=4,
        sampling=SamplingConfig(num_samples=2, max_new_tokens=8),
        ppo_epochs=2,
        minibatch_size=4,
        learning_rate=1e-2,
        save_every=0,
    )
    trainer = PPOTrainer(policy, SequenceReward(lambda p, t: float(len(t) % 3)), config, SAMPLES)
    ratios, loss_fn = [], POLICY_LOSSES["ppo"]

    def recorded(logp, old_logp, advantages, mask, params):
        assert logp.dtype == old_logp.dtype == advantages.dtype == torch.float32
        ratios.append(torch.exp(logp.detach() - old_logp)[mask.bool()])
        return loss_fn(logp, old_logp, advantages, mask, params)

    monkeypatch.setitem(POLICY_LOSSES, "ppo", recorded)
    before = {n: p.detach().clone() for n, p in policy.model.named_parameters() if p.requires_grad}
    torch.manual_seed(0)
    stats = defaultdict(list)
    chunks = trainer.rollout(trainer.local_problems(0), stats)
    for chunk in chunks:
        assert {chunk.values.dtype, chunk.advantages.dtype, chunk.returns.dtype} == {torch.float32}
        # the reference is the policy in the same dtype: KL ~0 (not bit for bit: a frozen copy's bf16 kernels
        # may differ from those of weights that require grad)
        assert chunk.kl.abs().max() <= LOGP_MAX_ABS
    trainer.update(chunks, stats)
    assert torch.equal(ratios[0], torch.ones_like(ratios[0]))
    assert all(torch.isfinite(torch.tensor(stats[k])).all() for k in ("policy_loss", "value_loss"))
    moved = [
        n for n, p in policy.model.named_parameters() if p.requires_grad and not torch.equal(p, before[n])
    ]
    assert moved
    summary = json.loads((tmp_path / PRECISION_FILE).read_text())
    adapters = ["float32"] if lora else ["bfloat16"]  # peft keeps adapters on a bf16 base in float32
    assert summary["trainable_weights"] == sorted(set(adapters + ["float32"]))  # + the float32 value head
    trainer.finish()
    # and an SFT step on the same weights (transformers' loss upcasts the bf16 logits)
    problems = SAMPLES[:2]
    sft = SFTConfig(output_dir=str(tmp_path / "sft"), epochs=1, batch_size=2, learning_rate=1e-3)
    losses = sft_train(
        policy, problems, [rationale_target(p) for p in problems], sft, accelerator=trainer.accelerator
    )
    assert torch.isfinite(torch.tensor(losses)).all()


def test_wavegrad2_in_bf16_takes_and_returns_float32(tmp_path):
    from align.diffusion.config import DiffusionRLConfig
    from align.diffusion.speech import WaveGrad2, WaveGrad2Config, read_ljspeech
    from align.diffusion.trainer import PRECISION_FILE as DLPO_PRECISION
    from align.diffusion.trainer import DiffusionRLTrainer
    from align.diffusion.tts import tts_task

    torch.manual_seed(0)
    config = WaveGrad2Config(
        sample_rate=8000, upsample_factors=[4, 4], encoder_dim=16, encoder_layers=1, decoder_channels=[16, 8]
    )
    model = WaveGrad2(config).eval()
    cast = copy.deepcopy(model).to(torch.bfloat16)
    texts = ["a short one.", "and a longer sentence here."]
    with torch.no_grad():
        cond, shape = model.prepare(texts)
        cond16, shape16 = cast.prepare(texts)
        x = torch.randn(shape)
        t = torch.tensor([10, 500])
        eps, eps16 = model(x, t, cond), cast(x, t, cond)
    assert cond16.durations.dtype == eps16.dtype == torch.float32
    assert shape16 == shape  # durations summed in float32: the same frame counts
    assert (eps16 - eps).abs().max() < 0.05 * eps.abs().max()

    clips = read_ljspeech(ROOT / "data" / "ljspeech-sample", 8000, resample=True, limit=4)
    task = tts_task(
        cast, [c.text for c in clips], lambda wavs: torch.tensor([float(abs(w).mean()) for w in wavs]), clips
    )
    rl = DiffusionRLConfig(
        output_dir=str(tmp_path),
        num_inference_steps=4,
        train_steps_per_trajectory=2,
        diffusion_timesteps=1,
        diffusion_batch_size=2,
        prompts_per_iteration=2,
        sampling_batch_size=2,
        minibatch_size=2,
        save_every=0,
    )
    trainer = DiffusionRLTrainer(cast, cast.config.scheduler(), task, rl)  # bf16 weights, as DeepSpeed casts
    metrics = trainer.step()
    assert all(map(torch.isfinite, torch.tensor([metrics["reward"], metrics["kl"], metrics["pg_loss"]])))
    assert json.loads((tmp_path / DLPO_PRECISION).read_text())["trainable_weights"] == ["bfloat16"]


def test_unsupported_settings_name_the_setting():
    from align.ares.config import AresConfig
    from align.rlhf.config import PolicySettings, TldrConfig
    from align.rlhf.training import TrainSettings

    sections = {
        "ppo": PPOConfig(mixed_precision="fp16"),
        "tldr": TldrConfig(policy_settings=PolicySettings(quantization="4bit"), reward_quantization="8bit"),
        "sft": TrainSettings(quantization="4bit"),
        "ares": AresConfig(),
    }
    problems = unsupported_settings(sections, cuda=False, bitsandbytes=False, launch_precision="no")
    named = sorted(p.split(":")[0] for p in problems)
    assert named == sorted(
        [
            "ppo.mixed_precision",
            "tldr.policy_settings.quantization",
            "tldr.reward_quantization",
            "sft.quantization",
        ]
    )
    assert all("CUDA" in p for p in problems)
    with_gpu = unsupported_settings(sections, cuda=True, bitsandbytes=False, launch_precision="no")
    # fp16 runs on CUDA; 4-bit still needs bitsandbytes
    assert sorted(p.split(":")[0] for p in with_gpu) == [n for n in named if n != "ppo.mixed_precision"]
    assert unsupported_settings(sections, cuda=True, bitsandbytes=True, launch_precision="fp16") == []
    fine = {"ppo": PPOConfig(mixed_precision="bf16"), "sft": TrainSettings()}
    assert unsupported_settings(fine, cuda=False, bitsandbytes=False, launch_precision="bf16") == []
    launch = unsupported_settings(fine, cuda=False, bitsandbytes=False, launch_precision="fp16")
    assert len(launch) == 1 and "mixed_precision 'fp16'" in launch[0]


def test_recipe_refuses_fp16_launch_on_this_machine(tmp_path):
    """`accelerate launch` with fp16 (it passes ACCELERATE_MIXED_PRECISION) on a machine without CUDA: exit 2
    before any work, naming the launch's setting (more cases in tests/test_launch.py)."""
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: fp16 runs")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "ACCELERATE_MIXED_PRECISION": "fp16"}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "recipes" / "dlpo_tts.py")],
        capture_output=True,
        text=True,
        env=env,
        cwd=str(tmp_path),  # nothing may be written: the check comes before any run folder
        timeout=300,
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "accelerate launch: mixed_precision 'fp16'" in proc.stderr and "Traceback" not in proc.stderr
    assert list(tmp_path.iterdir()) == []
