"""Rollouts collected by worker processes (`--rollout-workers`): the shares split the envs evenly, the merged
normalisation statistics equal feeding every observation in turn, collecting in worker processes gives exactly
what the same shares collected one after another in this process give, a run with workers learns and resumes,
and what it cannot run is refused naming the flag."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from control.config import TrainConfig, config_problems
from control.envs import VecNormalize, make_vec_env
from control.networks import ActorCritic
from control.rollout import EnvState, Rollout
from control.rollout_workers import (
    ParallelRollouts,
    RecordingNormalize,
    Share,
    merge_statistics,
    share_bounds,
)
from control.run import recorded_config
from control.samplers import NumpyMLPSampler, NumpyPolicy
from control.train import train

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
FIELDS = ("obs", "actions", "log_probs", "rewards", "dones", "values")


def test_shares_split_the_envs_evenly():
    assert share_bounds(5, 2) == [(0, 3), (3, 5)]
    assert share_bounds(2, 2) == [(0, 1), (1, 2)]
    assert share_bounds(8, 3) == [(0, 3), (3, 6), (6, 8)]


def test_merged_statistics_equal_feeding_every_observation_in_turn():
    rng = np.random.default_rng(0)
    start = VecNormalize((3,), 1, 0.9)
    start.obs(rng.normal(2.0, 3.0, (1, 3)))  # statistics with some history
    one_by_one = VecNormalize((3,), 1, 0.9)
    one_by_one.load_state_dict(start.state_dict())
    shares = [RecordingNormalize((3,), 2, 0.9), RecordingNormalize((3,), 1, 0.9)]
    for share in shares:
        share.load_state_dict(start.state_dict())
    for _ in range(50):
        for share in shares:
            n = share.returns.shape[0]
            obs, reward = rng.normal(1.0, 2.0, (n, 3)), rng.normal(0.5, 1.0, n)
            share.obs(obs)
            share.reward(reward, rng.random(n) < 0.1)
            for row in obs:  # what one process gives, one observation at a time
                one_by_one.obs(row[None])
    seen = [share.take_seen() for share in shares]
    merged = VecNormalize((3,), 1, 0.9)
    merged.load_state_dict(start.state_dict())
    merge_statistics(merged, [s[0] for s in seen], [s[1] for s in seen])
    assert merged.obs_count == pytest.approx(one_by_one.obs_count)
    np.testing.assert_allclose(merged.obs_mean, one_by_one.obs_mean, rtol=1e-10)
    np.testing.assert_allclose(merged.obs_var, one_by_one.obs_var, rtol=1e-10)
    returns = np.concatenate([s[1] for s in seen])
    assert len(returns) == 150 and merged.ret_count == pytest.approx(start.ret_count + 150)
    # the returns fed are the discounted sums VecNormalize.reward tracks: their mean is the running mean
    assert merged.ret_mean == pytest.approx(
        (start.ret_mean * start.ret_count + returns.sum()) / (start.ret_count + 150)
    )
    assert all(s.take_seen()[0].shape == (0, 3) for s in shares)  # taken: nothing left


def _run_parts(cfg: TrainConfig):
    envs = make_vec_env(cfg.env_config(), share_bounds(cfg.num_envs, cfg.rollout_workers)[0][1], cfg.seed)
    torch.manual_seed(cfg.seed)
    agent = ActorCritic(envs.single_observation_space, envs.single_action_space, tuple(cfg.hidden))
    sampler = NumpyMLPSampler(agent, cfg.seed)
    norm = VecNormalize(envs.single_observation_space.shape, cfg.num_envs, cfg.gamma)
    buf = Rollout.allocate(
        cfg.num_steps,
        cfg.num_envs,
        envs.single_observation_space.shape,
        envs.single_action_space.shape,
        False,
    )
    return envs, agent, sampler, norm, buf


class _Log:
    def __init__(self):
        self.rows = []

    def episode(self, step, ret, length):
        self.rows.append((step, ret, length))

    def scalar(self, *args):
        pass


def test_workers_collect_exactly_what_the_same_shares_collect_in_turn():
    cfg = TrainConfig(env_id="Pendulum-v1", num_envs=3, num_steps=150, rollout_workers=2, seed=4)
    # in worker processes
    envs, agent, sampler, norm, buf = _run_parts(cfg)
    parallel = ParallelRollouts(cfg, envs, sampler, True, reset_seed=cfg.seed)
    state, log, clock = EnvState(None, None, None), _Log(), {"env": 0.0, "policy": 0.0}
    rollouts = []
    try:
        for _ in range(2):
            step = parallel.collect(norm, buf, state, log, 0, clock)
            rollouts.append({name: np.copy(getattr(buf, name)) for name in FIELDS})
            with torch.no_grad():  # a policy change between rollouts reaches the worker
                agent.log_std.add_(0.3)
            sampler.sync()
    finally:
        parallel.close()
    assert step == 450 and len(log.rows) >= 3  # Pendulum episodes last 200 steps
    # the same shares, one after another, in this process
    envs2, agent2, sampler2, norm2, buf2 = _run_parts(cfg)
    shares = [
        Share(cfg, (0, 2), sampler2, True, cfg.seed, envs=envs2),
        Share(cfg, (2, 3), NumpyPolicy(sampler2.params(), [cfg.seed, 1]), True, cfg.seed),
    ]
    for r, expected in enumerate(rollouts):
        results = [
            share.collect(sampler2.params(), norm2.state_dict(), {"env": 0.0, "policy": 0.0})
            for share in shares
        ]
        merge_statistics(norm2, [x.seen_obs for x in results], [x.seen_returns for x in results])
        for name in FIELDS:
            got = np.concatenate([getattr(x.buf, name) for x in results], axis=1)
            np.testing.assert_array_equal(got, expected[name], err_msg=f"rollout {r} {name}")
        with torch.no_grad():
            agent2.log_std.add_(0.3)
        sampler2.sync()
    for key, value in norm.state_dict().items():
        np.testing.assert_array_equal(value, norm2.state_dict()[key], err_msg=key)
    np.testing.assert_array_equal(state.obs, np.concatenate([shares[0].state.obs, shares[1].state.obs]))
    for share in shares:
        share.close()


def test_a_worker_error_reaches_the_main_process_with_its_traceback():
    cfg = TrainConfig(env_id="Pendulum-v1", num_envs=2, num_steps=8, rollout_workers=2, seed=0)
    envs, _, sampler, norm, buf = _run_parts(cfg)
    parallel = ParallelRollouts(cfg, envs, sampler, True, reset_seed=0)
    try:
        parallel.conns[0].send(({"both": "not arrays"}, norm.state_dict()))  # a request the worker chokes on
        with pytest.raises(RuntimeError, match="rollout worker 1 failed:\n.*Traceback"):
            parallel._receive(0)
    finally:
        parallel.close()


def _episodes(out):
    with (out / "episodes.csv").open() as f:
        return [(int(r["step"]), float(r["return"])) for r in csv.DictReader(f)]


def test_training_with_rollout_workers_learns_cartpole_and_resumes(tmp_path):
    kwargs = dict(
        env_id="CartPole-v1",
        num_envs=2,
        num_steps=256,
        rollout_workers=2,
        seed=1,
        compile="off",
        eval_episodes=0,
        quiet=True,
        checkpoint_every=512,
    )
    out = tmp_path / "run"
    train(TrainConfig(**kwargs, total_steps=1024, out_dir=str(out)))
    state = torch.load(out / "checkpoint.pt", weights_only=False)
    assert len(state["sampler"]["workers"]) == 1 and "rng" in state["sampler"]["workers"][0]
    summary = train(TrainConfig(**kwargs, total_steps=20480, out_dir=str(out)))  # resumes at step 1,024
    assert summary["global_step"] == 20480
    episodes = _episodes(out)
    steps = [s for s, _ in episodes]
    assert steps == sorted(steps) and steps[-1] <= 20480
    first, last = np.mean([r for _, r in episodes[:20]]), np.mean([r for _, r in episodes[-20:]])
    assert first < 40 and last > 2 * first, (first, last)  # random CartPole lasts ~22 steps


def test_recorded_config_names_rollout_workers_only_when_set():
    assert "rollout_workers" not in recorded_config(TrainConfig(env_id="CartPole-v1"))
    assert recorded_config(TrainConfig(env_id="CartPole-v1", rollout_workers=2))["rollout_workers"] == 2


def test_bad_rollout_worker_settings_name_the_flag():
    problems = config_problems(TrainConfig(env_id="CartPole-v1", num_envs=1, rollout_workers=2))
    assert any("--rollout-workers 2 needs at least as many envs, got --num-envs 1" in p for p in problems)
    problems = config_problems(
        TrainConfig(env_id="CartPole-v1", num_envs=2, rollout_workers=2, async_envs=True)
    )
    assert any("--async-envs and --rollout-workers" in p for p in problems)
    assert any("--rollout-workers must be >= 1" in p for p in config_problems(TrainConfig(rollout_workers=0)))


def test_an_algorithm_with_per_step_hooks_is_refused_in_two_lines(tmp_path):
    cmd = [
        sys.executable,
        "-m",
        "control",
        "train",
        "--algo",
        "ndppo",
        "--env",
        "Pendulum-v1",
        "--steps",
        "256",
        "--num-envs",
        "2",
        "--num-steps",
        "128",
        "--rollout-workers",
        "2",
        "--out-dir",
        str(tmp_path / "r"),
    ]
    done = subprocess.run(cmd, cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr
    assert "--rollout-workers 2 does not support an algorithm with per-step hooks (reward_term" in done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) <= 2


def test_ctrl_c_to_the_process_group_saves_and_the_same_command_resumes(tmp_path):
    out = tmp_path / "run"
    args = ["train", "--steps", "16384", "--num-envs", "2", "--num-steps", "128", "--rollout-workers", "2"]
    args += ["--checkpoint-every", "1024", "--eval-episodes", "1", "--compile", "off", "--out-dir", str(out)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "control", *args],
        cwd=tmp_path,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
        start_new_session=True,  # its own process group, as a terminal's Ctrl-C reaches (workers included)
    )
    deadline = time.monotonic() + 300
    while not (out / "checkpoint.pt").is_file() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)  # the test waits for the run to be under way; the run itself polls nothing
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130 and "Traceback" not in err, err
    line = [s for s in err.splitlines() if "stopped at step" in s][0]
    stopped = int(line.split("stopped at step ")[1].split(" of")[0].replace(",", ""))
    assert 0 < stopped < 16384
    resumed = subprocess.run(
        [sys.executable, "-m", "control", *args],
        cwd=tmp_path,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming from step {stopped:,}" in resumed.stderr
    assert json.loads(resumed.stdout)["global_step"] == 16384  # 64 whole rollouts of 2 x 128


def test_a_sweep_runs_rollout_workers_in_its_pool_and_refuses_what_cannot_use_them_up_front(tmp_path):
    from align.user_errors import UserError
    from control.sweep import plan, run_sweep

    base = TrainConfig(
        total_steps=1024, num_envs=2, num_steps=256, rollout_workers=2, compile="off", eval_episodes=1
    )
    bad = plan(base, ["ppo", "ndppo"], ["CartPole-v1"], [1], tmp_path / "bad")
    with pytest.raises(UserError, match="--rollout-workers 2 does not support"):
        run_sweep(bad, workers=1)
    assert not (tmp_path / "bad").exists()  # refused before any run started
    good = plan(base, ["ppo"], ["CartPole-v1"], [1], tmp_path / "good")
    (summary,) = run_sweep(good, workers=1)
    assert summary["global_step"] == 1024
    state = torch.load(Path(good[0].out_dir) / "checkpoint.pt", weights_only=False)
    assert len(state["sampler"]["workers"]) == 1
