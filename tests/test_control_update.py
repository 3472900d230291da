"""The compiled minibatch update makes the same updates as the eager loop (parameters and Adam state after
several steps, for Gaussian, discrete and multi-discrete heads, with value clipping and SPPO's reverse term),
falls back to the eager loop with a warning when compiling fails, shares its checkpoint format with the eager
loop, and `--compile auto` chooses it only where it pays."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

import control.update as update
from control.algos.registry import get
from control.config import TrainConfig, with_algo_defaults
from control.networks import ActorCritic
from control.train import train

OBS = gym.spaces.Box(-np.inf, np.inf, (11,), np.float64)


@pytest.fixture
def fast_backend(monkeypatch):
    """aot_eager: the same graph capture (dynamo, torch.func.grad, functional Adam) without C++ code generation,
    so these tests take seconds; the inductor path is checked by the slow test below."""
    monkeypatch.setattr(update, "BACKEND", "aot_eager")


def _pair(action_space: gym.Space) -> tuple[list[ActorCritic], list[torch.optim.Adam]]:
    nets, optimizers = [], []
    for _ in range(2):
        torch.manual_seed(0)
        nets.append(ActorCritic(OBS, action_space))
        optimizers.append(torch.optim.Adam(nets[-1].parameters(), lr=3e-4, eps=1e-5, fused=True))
    return nets, optimizers


@pytest.mark.parametrize(
    ("action_space", "algo", "extra"),
    [
        (gym.spaces.Box(-1, 1, (3,)), "ppo", {"clip_vloss": True, "max_grad_norm": 0.05}),
        (gym.spaces.MultiDiscrete([5, 5]), "sppo", {"alpha": 0.5, "beta": 1.0, "ent_coef": 0.01}),
    ],
)
def test_compiled_update_equals_the_eager_update(fast_backend, action_space, algo, extra):
    cfg = with_algo_defaults(TrainConfig(env_id="Hopper-v5", algo=algo, **extra), "ppo")
    (eager, compiled), (eager_opt, compiled_opt) = _pair(action_space)
    g = torch.Generator().manual_seed(1)
    batch = 256
    obs = torch.randn(batch, 11, generator=g)
    with torch.no_grad():
        actions, log_prob, *_ = eager.distribution_terms(obs)
    actions = actions.float()
    rollout = (
        obs,
        actions,
        log_prob + 0.05 * torch.randn(batch, generator=g),  # ratios away from 1: clipping matters
        torch.randn(batch, generator=g),
        torch.randn(batch, generator=g),
        torch.randn(batch, generator=g),
    )
    step = update.CompiledUpdate(compiled, get(algo), cfg, compiled_opt)
    for lr in (3e-4, 3e-4, 1e-4, 5e-5):  # annealed rates reach the compiled step without recompiling
        for opt in (eager_opt, compiled_opt):
            opt.param_groups[0]["lr"] = lr
        idx = torch.randperm(batch, generator=g)[:64]
        terms = eager.distribution_terms(obs[idx], actions[idx])
        adv = update.normalise_advantages(rollout[3][idx], cfg)
        loss, logs = update.actor_critic_loss(
            get(algo), cfg, terms, rollout[2][idx], adv, rollout[4][idx], rollout[5][idx]
        )
        eager_opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(eager.parameters(), cfg.max_grad_norm)
        eager_opt.step()
        with torch.compiler.set_stance("fail_on_recompile" if lr != 3e-4 else "default"):
            compiled_logs = step(rollout, idx)  # one graph for every step count and learning rate
        assert compiled_logs is not None and set(compiled_logs) == set(logs)
        for k, v in logs.items():
            torch.testing.assert_close(compiled_logs[k], v, atol=1e-5, rtol=1e-5)
    for p, q in zip(eager.parameters(), compiled.parameters(), strict=True):
        torch.testing.assert_close(q, p, atol=1e-6, rtol=1e-5)
    start = [p.detach().clone() for p in _pair(action_space)[0][0].parameters()]
    assert any((p - s).abs().max() > 1e-4 for p, s in zip(compiled.parameters(), start, strict=True))
    eager_state, compiled_state = eager_opt.state_dict(), compiled_opt.state_dict()
    assert eager_state["param_groups"] == compiled_state["param_groups"]
    for i, state in eager_state["state"].items():
        assert float(compiled_state["state"][i]["step"]) == float(state["step"]) == 4.0
        for key in ("exp_avg", "exp_avg_sq"):
            torch.testing.assert_close(compiled_state["state"][i][key], state[key], atol=1e-8, rtol=1e-4)


RUN = dict(env_id="CartPole-v1", num_steps=128, num_envs=2, minibatch_size=64, eval_episodes=0)


def test_failed_compile_warns_and_trains_as_the_eager_loop(monkeypatch, tmp_path):
    def no_compiler(graph, example_inputs):
        raise RuntimeError("no C++ compiler here")

    monkeypatch.setattr(update, "BACKEND", no_compiler)
    with pytest.warns(RuntimeWarning, match="torch.compile of the update failed.*no C.. compiler"):
        train(TrainConfig(out_dir=str(tmp_path / "failed"), total_steps=512, compile="on", **RUN))
    train(TrainConfig(out_dir=str(tmp_path / "eager"), total_steps=512, compile="off", **RUN))
    failed, eager = (
        torch.load(tmp_path / name / "checkpoint.pt", weights_only=True) for name in ("failed", "eager")
    )
    for k, v in eager["agent"].items():
        assert torch.equal(failed["agent"][k], v), k


def test_compiled_and_eager_runs_share_checkpoints(fast_backend, tmp_path):
    """A run compiled for its first half resumes eagerly (and the other way round): one optimizer format."""
    train(TrainConfig(out_dir=str(tmp_path), total_steps=512, compile="on", **RUN))
    first = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert float(first["optimizer"]["state"][0]["step"]) == 2 * 10 * 4  # iterations x epochs x minibatches
    summary = train(TrainConfig(out_dir=str(tmp_path), total_steps=1024, compile="off", **RUN))
    second = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert summary["global_step"] == 1024 and float(second["optimizer"]["state"][0]["step"]) == 160
    train(TrainConfig(out_dir=str(tmp_path), total_steps=1536, compile="on", **RUN))
    third = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert float(third["optimizer"]["state"][0]["step"]) == 240
    assert any(not torch.equal(third["agent"][k], v) for k, v in second["agent"].items())


def test_compile_auto_compiles_long_mlp_runs_only():
    mlp = ActorCritic(OBS, gym.spaces.Discrete(2))
    cnn = ActorCritic(gym.spaces.Box(0, 255, (4, 84, 84), np.uint8), gym.spaces.Discrete(2))
    auto, on, off = (TrainConfig(compile=c) for c in ("auto", "on", "off"))
    long, short = update.COMPILE_AUTO_MIN_STEPS, update.COMPILE_AUTO_MIN_STEPS - 1
    assert update.should_compile(auto, mlp, False, long) and not update.should_compile(
        auto, mlp, False, short
    )
    assert update.should_compile(on, mlp, False, 1) and not update.should_compile(off, mlp, False, long)
    assert not update.should_compile(on, cnn, False, long)  # image policies: the eager loop
    assert not update.should_compile(on, mlp, True, long)  # a critic hook or extra losses: the eager loop
    with pytest.raises(ValueError, match="compile='yes'.*auto, on, off"):
        update.should_compile(TrainConfig(compile="yes"), mlp, False, long)


@pytest.mark.slow
def test_ppo_with_the_inductor_compiled_update_solves_cartpole(tmp_path):
    summary = train(
        TrainConfig(
            env_id="CartPole-v1",
            total_steps=60_000,
            num_envs=4,
            num_steps=256,
            minibatch_size=256,
            eval_episodes=5,
            seed=1,
            compile="on",
            out_dir=str(tmp_path),
        )
    )
    assert summary["eval_mean_return"] >= 475, summary


def test_each_run_compiles_its_own_update(fast_backend, monkeypatch):
    """Runs in one process (a sweep worker) never share compiled graphs: dynamo's per-code limit of variants
    (8) would otherwise send the ninth differently configured run to the slow uncompiled path."""
    from torch._dynamo.utils import counters

    monkeypatch.setattr(torch._dynamo.config, "recompile_limit", 1)
    rollout = (torch.randn(128, 11), torch.randn(128, 3), *(torch.randn(128) for _ in range(4)))
    for clip in (0.1, 0.2, 0.3):
        cfg = with_algo_defaults(TrainConfig(env_id="Hopper-v5", clip_coef=clip), "ppo")
        (net, _), (opt, _) = _pair(gym.spaces.Box(-1, 1, (3,)))
        graphs = counters["stats"]["unique_graphs"]
        assert update.CompiledUpdate(net, get("ppo"), cfg, opt)(rollout, torch.arange(64)) is not None
        assert counters["stats"]["unique_graphs"] == graphs + 1  # compiled, not run uncompiled by dynamo
