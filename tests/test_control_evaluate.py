"""Re-evaluating saved runs: the same episodes give the same returns; sampled evaluation is seeded and leaves the
training RNG alone; ND-PPO checkpoints load too."""

from __future__ import annotations

import json

import pytest
import torch

from align.user_errors import UserError
from control.__main__ import main as cli
from control.config import TrainConfig
from control.evaluate import evaluate_run, load_agent
from control.run import evaluate
from control.train import train

RUN = dict(env_id="CartPole-v1", total_steps=4096, num_steps=256, num_envs=2, eval_episodes=4, seed=3)


def test_evaluate_run_reproduces_the_runs_final_evaluation(tmp_path):
    summary = train(TrainConfig(out_dir=str(tmp_path), **RUN))
    again = evaluate_run(tmp_path)
    assert again["greedy"] and again["episodes"] == 4 and again["global_step"] == 4096
    assert again["mean_return"] == pytest.approx(summary["eval_mean_return"])


def test_sampled_evaluation_is_seeded_and_leaves_the_torch_rng_alone(tmp_path):
    cfg = TrainConfig(out_dir=str(tmp_path), eval_greedy=False, **RUN)
    train(cfg)
    agent, norm, _ = load_agent(tmp_path, cfg)
    before = torch.get_rng_state()
    evaluate(agent, cfg, norm, 2, seed=5)  # what a trainer's periodic evaluation calls
    assert torch.equal(before, torch.get_rng_state())
    first = evaluate_run(tmp_path, episodes=3)
    assert not first["greedy"] and evaluate_run(tmp_path, episodes=3)["returns"] == first["returns"]
    assert evaluate_run(tmp_path, episodes=3, seed=99)["returns"] != first["returns"]
    assert evaluate_run(tmp_path, episodes=3, greedy=True)["greedy"]


def test_atari_evaluates_with_sampled_actions_by_default():
    assert not TrainConfig(env_id="ALE/MsPacman-v5").evaluates_greedily()
    assert TrainConfig(env_id="ALE/MsPacman-v5", eval_greedy=True).evaluates_greedily()
    assert TrainConfig(env_id="Hopper-v5").evaluates_greedily()


def test_cli_evaluates_an_ndppo_run(tmp_path, capsys):
    summary = train(TrainConfig(algo="ndppo", out_dir=str(tmp_path), **RUN))
    assert cli(["evaluate", str(tmp_path)]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["mean_return"] == pytest.approx(summary["eval_mean_return"])


def test_evaluate_names_what_is_missing(tmp_path):
    with pytest.raises(UserError, match="config.json"):
        evaluate_run(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"env_id": "CartPole-v1"}))
    with pytest.raises(UserError, match="no checkpoint"):
        evaluate_run(tmp_path)
