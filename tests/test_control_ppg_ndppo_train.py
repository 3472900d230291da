"""PPG and normality-guided PPO train: they learn CartPole within a fixed budget and seed; Hopper runs and logs."""

import json

import pytest

from control.__main__ import main as cli
from control.config import TrainConfig
from control.train import train

CARTPOLE = dict(env_id="CartPole-v1", num_envs=4, num_steps=256, minibatch_size=256, eval_episodes=5, seed=1)
ALGOS = ["ppg", "ndppo", "ndppo-nobonus", "qppo"]


@pytest.mark.parametrize("algo", ALGOS)
def test_solves_cartpole(tmp_path, algo):
    """Greedy return >= 475 of 500 after 60k steps, same budget and seed as the core's PPO test (~10 s each)."""
    summary = train(TrainConfig(algo=algo, out_dir=str(tmp_path), total_steps=60_000, **CARTPOLE))
    assert summary["eval_mean_return"] >= 475, summary


@pytest.mark.parametrize("algo", ["ppg", "ndppo"])
def test_hopper_runs_and_logs_with_reward_noise(tmp_path, algo):
    summary = train(
        TrainConfig(
            algo=algo,
            env_id="Hopper-v5",
            total_steps=1024,
            num_steps=512,
            reward_noise=0.05,
            eval_episodes=1,
            out_dir=str(tmp_path),
        )
    )
    assert summary["global_step"] == 1024
    assert list((tmp_path / "tb").glob("events.out.tfevents.*")) and (tmp_path / "checkpoint.pt").is_file()
    assert (tmp_path / "episodes.csv").read_text().strip()


def test_ndppo_resumes_its_episode_clock(tmp_path):
    base = dict(algo="ndppo", env_id="Pendulum-v1", num_steps=256, eval_episodes=0, out_dir=str(tmp_path))
    assert train(TrainConfig(total_steps=512, **base))["global_step"] == 512
    assert train(TrainConfig(total_steps=1024, **base))["global_step"] == 1024
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["normality"]["critic_mode"] == "normal" and config["normality"]["bonus"] is True


def test_cli_and_sweep_accept_the_new_algorithms(tmp_path):
    args = [
        "sweep",
        "--algos",
        "ppg,qppo",
        "--envs",
        "CartPole-v1",
        "--seeds",
        "1",
        "--steps",
        "256",
        "--num-steps",
        "128",
        "--eval-episodes",
        "1",
        "--root",
        str(tmp_path),
        "--workers",
        "1",
    ]
    assert cli(args) == 0
    runs = sorted(p.name for p in tmp_path.iterdir())
    assert runs == ["ppg-CartPole-v1-s1", "qppo-CartPole-v1-s1"]
