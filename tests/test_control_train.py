"""Control training: PPO and SPPO solve CartPole; Atari, MuJoCo and Box2D run and log; resume continues."""

import csv
import json

import pytest

from align.user_errors import UserError
from control.__main__ import main as cli
from control.config import TrainConfig
from control.train import train

CARTPOLE = dict(
    env_id="CartPole-v1",
    total_steps=60_000,
    num_envs=4,
    num_steps=256,
    minibatch_size=256,
    eval_episodes=5,
    seed=1,
)


@pytest.mark.parametrize("algo_kw", [dict(algo="ppo"), dict(algo="sppo", alpha=0.5, beta=1.0, z=-1.0)])
def test_ppo_and_sppo_solve_cartpole(tmp_path, algo_kw):
    summary = train(TrainConfig(out_dir=str(tmp_path), **CARTPOLE, **algo_kw))
    assert summary["eval_mean_return"] >= 475, summary


@pytest.mark.parametrize(
    ("env_id", "extra"),
    [
        ("ALE/Pong-v5", dict(num_envs=2, num_steps=128, reward_flip_p=0.1)),
        ("Hopper-v5", dict(num_steps=512, reward_noise=0.05)),
        ("LunarLander-v3", dict(num_steps=512)),
    ],
)
@pytest.mark.parametrize("algo", ["ppo", "sppo", "a2c", "sa2c"])
def test_envs_run_and_log(tmp_path, env_id, extra, algo):
    if algo in ("sppo", "sa2c") and env_id == "Hopper-v5":
        extra = {**extra, "discretize_bins": 11}
    steps = 512 if env_id == "ALE/Pong-v5" else 1024
    summary = train(
        TrainConfig(
            algo=algo,
            env_id=env_id,
            total_steps=steps,
            out_dir=str(tmp_path),
            eval_episodes=0,
            beta=1.0 if algo in ("sppo", "sa2c") else 0.0,
            alpha=0.5,
            **extra,
        )
    )
    assert summary["global_step"] >= steps * 0.9
    assert list((tmp_path / "tb").glob("events.out.tfevents.*")) and (tmp_path / "checkpoint.pt").is_file()


def test_resume_continues_the_step_count(tmp_path):
    base = dict(env_id="CartPole-v1", num_steps=256, eval_episodes=0, out_dir=str(tmp_path))
    first = train(TrainConfig(total_steps=1024, **base))
    second = train(TrainConfig(total_steps=2048, **base))
    assert first["global_step"] == 1024 and second["global_step"] == 2048
    assert json.loads((tmp_path / "summary.json").read_text())["global_step"] == 2048


def test_gaussian_policy_refuses_reverse_term(tmp_path):
    with pytest.raises(ValueError, match="discretize-bins 11"):
        train(
            TrainConfig(
                algo="sppo",
                env_id="Pendulum-v1",
                beta=1.0,
                discretize_bins=0,  # sppo discretises by default; a user who turns that off is told why
                total_steps=256,
                num_steps=128,
                eval_episodes=0,
                out_dir=str(tmp_path),
            )
        )


def test_cli_sweep_resumes_and_plots(tmp_path):
    args = [
        "sweep",
        "--algos",
        "ppo,a2c",
        "--envs",
        "CartPole-v1",
        "--seeds",
        "1,2",
        "--steps",
        "1024",
        "--root",
        str(tmp_path / "sweep"),
        "--eval-episodes",
        "1",
        "--workers",
        "2",
    ]
    assert cli(args) == 0
    runs = sorted((tmp_path / "sweep").iterdir())
    assert len(runs) == 4 and all((r / "summary.json").is_file() for r in runs)
    stamp = [(r / "summary.json").stat().st_mtime for r in runs]
    assert cli(args) == 0  # finished runs are skipped
    assert stamp == [(r / "summary.json").stat().st_mtime for r in runs]
    assert cli(["plot", *map(str, runs), "--out", str(tmp_path / "c.png")]) == 0
    assert (tmp_path / "c.png").stat().st_size > 1000
    rows = list(csv.reader((runs[0] / "episodes.csv").open()))
    assert rows and len(rows[0]) == 3
    with pytest.raises(UserError, match="unknown algorithm"):
        cli(["train", "--algo", "nope"])
