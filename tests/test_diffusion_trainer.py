"""The diffusion RL trainer on a tiny diffusers UNet2DModel: the reward rises, resume is exact, bad rewards are named."""

import json

import pytest
import torch
from diffusers import DDPMScheduler, UNet2DModel

from align.diffusion.config import DiffusionRLConfig
from align.diffusion.task import DiffusionTask, UNetDenoiser
from align.diffusion.trainer import DiffusionRLTrainer

torch.set_num_threads(1)


def tiny_unet() -> UNetDenoiser:
    torch.manual_seed(0)
    unet = UNet2DModel(
        sample_size=8,
        in_channels=1,
        out_channels=1,
        layers_per_block=1,
        block_out_channels=(8, 16),
        down_block_types=("DownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "UpBlock2D"),
        norm_num_groups=4,
    )
    return UNetDenoiser(unet)


def brightness(x0, prompts, cond):
    return x0.mean(dim=(1, 2, 3))


def task(reward=brightness) -> DiffusionTask:
    return DiffusionTask(
        prompts=list(range(16)), prepare=lambda m, p: (None, (len(p), 1, 8, 8)), reward_fn=reward
    )


def config(tmp_path, **kw) -> DiffusionRLConfig:
    base = dict(
        output_dir=str(tmp_path),
        objective="ddpo",
        alpha=1.0,
        beta=0.0,
        clip_range=0.2,
        num_inference_steps=8,
        train_steps_per_trajectory=4,
        prompts_per_iteration=16,
        sampling_batch_size=16,
        minibatch_size=8,
        epochs_per_rollout=2,
        learning_rate=3e-3,
        diffusion_timesteps=2,
        diffusion_batch_size=8,
    )
    base.update(kw)
    return DiffusionRLConfig(**base)


@pytest.mark.parametrize("objective", ["ddpo", "dlpo"])
def test_reward_rises_on_a_tiny_unet2d(tmp_path, objective):
    extra = {"beta": 0.05} if objective == "dlpo" else {}
    trainer = DiffusionRLTrainer(
        tiny_unet(),
        DDPMScheduler(num_train_timesteps=1000),
        task(),
        config(tmp_path, objective=objective, **extra),
    )
    history = trainer.train(16)
    first = history[0]["reward"]  # the untrained model's samples (pixels in [-1, 1])
    last = sum(h["reward"] for h in history[-4:]) / 4
    assert last > first + 0.25, (first, last)
    assert all("kl" in h for h in history) and history[-1]["kl"] > 0
    if objective == "dlpo":
        assert "diffusion_loss" in history[-1]


def test_resume_repeats_an_uninterrupted_run(tmp_path):
    full = DiffusionRLTrainer(
        tiny_unet(), DDPMScheduler(), task(), config(tmp_path / "full", objective="dpok", beta=0.1)
    )
    full.train(3)
    part = DiffusionRLTrainer(
        tiny_unet(), DDPMScheduler(), task(), config(tmp_path / "part", objective="dpok", beta=0.1)
    )
    part.train(2)
    with (tmp_path / "part" / "metrics.jsonl").open("a") as f:  # logged, then killed before the checkpoint
        f.write(json.dumps({"iteration": 2, "reward": 123.0}) + "\n")
    resumed = DiffusionRLTrainer(
        tiny_unet(), DDPMScheduler(), task(), config(tmp_path / "part", objective="dpok", beta=0.1)
    )
    resumed.train(3)
    assert resumed.iteration == 3
    for a, b in zip(full.model.state_dict().values(), resumed.model.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b)
    rows = [json.loads(line) for line in (tmp_path / "part" / "metrics.jsonl").read_text().splitlines()]
    full_rows = [json.loads(line) for line in (tmp_path / "full" / "metrics.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in rows] == [0, 1, 2]
    assert rows[2]["reward"] == pytest.approx(full_rows[2]["reward"])


def test_non_finite_reward_is_named(tmp_path):
    def nan_reward(x0, prompts, cond):
        r = x0.mean(dim=(1, 2, 3))
        r[3] = float("nan")
        return r

    trainer = DiffusionRLTrainer(
        tiny_unet(), DDPMScheduler(), task(nan_reward), config(tmp_path, num_inference_steps=2)
    )
    with pytest.raises(ValueError, match=r"non-finite reward \(nan\) for sample 3"):
        trainer.step()


def test_missing_checkpoint_and_wrong_objective_are_named(tmp_path):
    trainer = DiffusionRLTrainer(
        tiny_unet(), DDPMScheduler(), task(), config(tmp_path, num_inference_steps=2)
    )
    with pytest.raises(FileNotFoundError, match="no trainer checkpoint"):
        trainer.load_checkpoint(tmp_path / "nowhere")
    trainer.save_checkpoint()
    other = DiffusionRLTrainer(
        tiny_unet(), DDPMScheduler(), task(), config(tmp_path, objective="rwr", num_inference_steps=2)
    )
    with pytest.raises(ValueError, match="objective 'ddpo'"):
        other.load_checkpoint()


def test_unet1d_denoiser_trains_through_the_same_trainer(tmp_path):
    from diffusers import UNet1DModel

    torch.manual_seed(0)
    unet = UNet1DModel(
        sample_size=32,
        in_channels=1,
        out_channels=1,
        extra_in_channels=64,
        block_out_channels=(32, 32, 64),
        down_block_types=("DownBlock1DNoSkip", "DownBlock1D", "AttnDownBlock1D"),
        up_block_types=("AttnUpBlock1D", "UpBlock1D", "UpBlock1DNoSkip"),
        mid_block_type="UNetMidBlock1D",
        act_fn="silu",
        use_timestep_embedding=False,
        time_embedding_type="fourier",
        flip_sin_to_cos=True,
        layers_per_block=1,
    )
    signal_task = DiffusionTask(
        prompts=list(range(16)),
        prepare=lambda m, p: (None, (len(p), 1, 32)),
        reward_fn=lambda x0, p, c: x0.mean(dim=(1, 2)),
    )
    trainer = DiffusionRLTrainer(
        UNetDenoiser(unet), DDPMScheduler(), signal_task, config(tmp_path, learning_rate=1e-3)
    )
    history = trainer.train(10)
    assert sum(h["reward"] for h in history[-3:]) / 3 > history[0]["reward"] + 0.1, [
        h["reward"] for h in history
    ]
