"""Loading a run folder someone else made never runs their code: every checkpoint and snapshot loader refuses a
file whose pickle would create a file when unpickled, names the opt-in, and still loads our own files."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

from align.checkpoints import (
    ALLOW_PICKLE_ENV,
    UnsafeCheckpoint,
    load_checkpoint,
    load_data,
    save_checkpoint,
    save_data,
)

ROOT = Path(__file__).resolve().parent.parent


class Trap:
    """Unpickling this opens (creates) `marker`: what a malicious checkpoint could do instead."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def write_trap(path: Path, marker: Path, extra: dict | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"agent": {}, "trap": Trap(marker), **(extra or {})}, path)
    return path


@pytest.fixture
def marker(tmp_path, monkeypatch):
    monkeypatch.delenv(ALLOW_PICKLE_ENV, raising=False)
    return tmp_path / "pwned"


def test_our_states_round_trip_without_pickle(tmp_path):
    rng = np.random.default_rng(3)
    np.random.seed(5)
    state = {
        "numpy_rng": np.random.get_state(),
        "generator": rng.bit_generator.state,
        "buffer": np.arange(6, dtype=np.uint32).reshape(2, 3),
        "flags": np.array([True, False]),
        "scalar": np.float64(1.5),
        "tensor": torch.arange(3.0),
        "tuple": (1, "a", None),
        "optimizer": torch.optim.Adam([torch.nn.Parameter(torch.ones(2))]).state_dict(),
    }
    save_checkpoint(tmp_path / "c.pt", state)
    torch.load(tmp_path / "c.pt", weights_only=True)  # loads with torch's safe unpickler as it is
    back = load_checkpoint(tmp_path / "c.pt")
    np.random.set_state(back["numpy_rng"])
    assert np.random.rand() == (np.random.seed(5), np.random.rand())[1]
    assert back["buffer"].dtype == np.uint32 and back["buffer"].tolist() == [[0, 1, 2], [3, 4, 5]]
    assert back["generator"] == rng.bit_generator.state and back["scalar"] == 1.5
    assert back["flags"].tolist() == [True, False] and back["tuple"] == (1, "a", None)
    snapshots = [{"qpos": np.array([0.1, 1 / 3]), "obstacles": [("curb", 7.25, 7.45)], "successes": 2}]
    save_data(tmp_path / "s.json", snapshots)
    again = load_data(tmp_path / "s.json")
    assert again[0]["qpos"].tolist() == [0.1, 1 / 3] and again[0]["obstacles"] == [["curb", 7.25, 7.45]]


def test_a_pickled_checkpoint_is_refused_unless_the_user_opts_in(tmp_path, marker, monkeypatch):
    path = write_trap(tmp_path / "checkpoint.pt", marker)
    with pytest.raises(UnsafeCheckpoint, match="--allow-pickle"):
        load_checkpoint(path)
    assert not marker.exists()
    monkeypatch.setenv(ALLOW_PICKLE_ENV, "1")
    with pytest.warns(RuntimeWarning, match="allow-pickle"):
        load_checkpoint(path)
    assert marker.exists()  # the opt-in really unpickles: only for files the user trusts


def _control_run(tmp_path: Path, marker: Path) -> Path:
    from control.config import TrainConfig

    run = tmp_path / "run"
    cfg = TrainConfig(algo="ppo", env_id="CartPole-v1", total_steps=256, num_steps=128, out_dir=str(run))
    run.mkdir()
    (run / "config.json").write_text(json.dumps(dataclasses.asdict(cfg)))
    write_trap(run / "checkpoint.pt", marker, {"global_step": 128, "iteration": 1})
    return run


def test_control_loaders_refuse_a_trap(tmp_path, marker):
    from control.evaluate import evaluate_run, load_run_config
    from control.hierarchy.policies import RunPolicy
    from control.hierarchy.switch import SwitchFeatures, load_switch
    from control.hierarchy.transition_env import load_snapshots
    from control.train import train

    run = _control_run(tmp_path, marker)
    with pytest.raises(UnsafeCheckpoint):
        evaluate_run(run)
    with pytest.raises(UnsafeCheckpoint):  # resuming a run folder
        train(load_run_config(run))
    box = gym.spaces.Box(-1.0, 1.0, (3,), np.float32)
    with pytest.raises(UnsafeCheckpoint):
        RunPolicy(run, box, box)
    write_trap(tmp_path / "switch" / "checkpoint.pt", marker)
    with pytest.raises(UnsafeCheckpoint):
        load_switch(tmp_path / "switch", SwitchFeatures(lambda o: o, 10))
    legacy = tmp_path / "transitions" / "starts-a-b.pkl"
    legacy.parent.mkdir()
    legacy.write_bytes(__import__("pickle").dumps([{"trap": Trap(marker)}]))
    with pytest.raises(UnsafeCheckpoint, match="hand-over snapshots"):
        load_snapshots(legacy.with_suffix(".json"))
    assert not marker.exists()


def test_control_evaluate_cli_refuses_a_trap_with_exit_2(tmp_path, marker):
    run = _control_run(tmp_path, marker)
    proc = subprocess.run(
        [sys.executable, "-m", "control", "evaluate", str(run)], capture_output=True, text=True, cwd=ROOT
    )
    assert proc.returncode == 2, proc.stderr
    assert "--allow-pickle" in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) <= 3
    assert not marker.exists()


def test_align_loaders_refuse_a_trap(tmp_path, marker, tiny_lm_path):
    from diffusers import DDPMScheduler

    from align.diffusion.trainer import STATE_FILE as DIFFUSION_STATE
    from align.diffusion.trainer import DiffusionRLTrainer
    from align.models import load_policy
    from align.trainers.ppo import STATE_FILE as PPO_STATE
    from align.trainers.ppo import PPOTrainer
    from align.trainers.ppo_config import PPOConfig
    from align.trainers.reward_fns import SequenceReward
    from tests.test_diffusion_trainer import config, task, tiny_unet

    ppo_dir = tmp_path / "ppo"
    write_trap(ppo_dir / PPO_STATE, marker)
    policy = load_policy(str(tiny_lm_path), dtype="float32")
    trainer = PPOTrainer(
        policy, SequenceReward(lambda p, t: 0.0), PPOConfig(output_dir=str(ppo_dir)), ["a prompt"]
    )
    with pytest.raises(UnsafeCheckpoint):
        trainer.load_checkpoint()
    dlpo_dir = tmp_path / "dlpo"
    write_trap(dlpo_dir / DIFFUSION_STATE, marker)
    diffusion = DiffusionRLTrainer(
        tiny_unet(), DDPMScheduler(num_train_timesteps=100), task(), config(dlpo_dir)
    )
    with pytest.raises(UnsafeCheckpoint):
        diffusion.load_checkpoint()
    assert not marker.exists()


def test_tts_pretraining_refuses_a_trap(tmp_path, marker):
    from align.diffusion.tts import PRETRAIN_STATE, TTSPretrainConfig, pretrain
    from tests.test_dlpo_tts import tiny_config

    write_trap(tmp_path / PRETRAIN_STATE, marker)
    from align.diffusion.speech.wavegrad2 import WaveGrad2

    with pytest.raises(UnsafeCheckpoint):
        pretrain(WaveGrad2(tiny_config()), [], TTSPretrainConfig(steps=1), tmp_path)
    assert not marker.exists()


def test_no_loader_in_the_package_unpickles_by_default():
    """Only align/checkpoints.py (behind the opt-in) and the legacy-snapshot branch may unpickle."""
    allowed = {"align/checkpoints.py", "control/hierarchy/transition_env.py"}
    offenders = []
    for package in ("align", "control", "teacher", "recipes"):
        for path in (ROOT / package).rglob("*.py"):
            rel = path.relative_to(ROOT).as_posix()
            text = path.read_text()
            if re.search(r"weights_only\s*=\s*False|pickle\.loads?\(", text) and rel not in allowed:
                offenders.append(rel)
    assert offenders == []
