"""The compiled minibatch update makes the same updates as the eager loop (parameters and Adam state after
several steps, for Gaussian, discrete and multi-discrete heads, with value clipping and SPPO's reverse term),
falls back to the eager loop with a warning when compiling fails, shares its checkpoint format with the eager
loop, is cached under a key of what it depends on, and `--compile auto` chooses it only where it pays."""

from __future__ import annotations

import json
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
import torch

import control.aot_cache as aot_cache
import control.update as update
from control.algos.registry import get
from control.config import TrainConfig, with_algo_defaults
from control.flat_adam import FlatAdam
from control.networks import ActorCritic
from control.train import train

OBS = gym.spaces.Box(-np.inf, np.inf, (11,), np.float64)


@pytest.fixture
def fast_backend(monkeypatch):
    """fx: the same traced graph (make_fx of torch.func.grad and functional Adam) run as is, without C++ code
    generation, so these tests take seconds; the AOTInductor path is checked by the slow test below."""
    monkeypatch.setattr(update, "BACKEND", "fx")


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
    compiled_opt = FlatAdam(list(compiled.parameters()), lr=3e-4, eps=1e-5, fused=True)
    step = update.CompiledUpdate(compiled, get(algo), cfg, compiled_opt)
    assert step.prepare(rollout, 64)
    for lr in (3e-4, 3e-4, 1e-4, 5e-5):  # annealed rates reach the compiled step as an input
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
        compiled_logs = step(rollout, idx)
        assert compiled_logs is not None and set(compiled_logs) == set(logs)
        for k, v in logs.items():
            torch.testing.assert_close(compiled_logs[k], v, atol=1e-5, rtol=1e-5)
    assert list(step.compiled) == [64]  # one function for every step count and learning rate
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


@pytest.mark.parametrize("algo", ["ndppo", "qppo"])
def test_compiled_update_with_a_hooks_quantile_critic_equals_the_eager_update(fast_backend, algo):
    """ND-PPO's and the quantile baseline's critic train inside the compiled update (their loss written as
    `critic_loss_from`): parameters of agent and critic, and Adam's state, as the eager loop's."""
    from types import SimpleNamespace

    from control.hooks import LoopContext, Minibatch

    cfg = with_algo_defaults(TrainConfig(env_id="Hopper-v5", algo=algo, num_envs=2), "ppo")
    g = torch.Generator().manual_seed(3)
    batch, sides = 256, []
    for _ in range(2):
        torch.manual_seed(0)
        agent = ActorCritic(OBS, gym.spaces.Box(-1, 1, (3,)))
        hooks = get(algo).hooks(cfg)
        envs = SimpleNamespace(single_observation_space=OBS)
        hooks.setup(LoopContext(cfg, envs, agent, None, torch.device("cpu"), None))
        for t in range(300):  # episodes of 40 and 60 steps: a schedule sigma_t that moves with t
            hooks.observe(np.array([float(t % 7), 1.0]), np.array([t % 40 == 39, t % 60 == 59]))
        sides.append((agent, hooks))
    obs = torch.randn(batch, 11, generator=g)
    with torch.no_grad():
        actions, log_prob, *_ = sides[0][0].distribution_terms(obs)
    rollout = (
        obs,
        actions.float(),
        log_prob + 0.05 * torch.randn(batch, generator=g),
        torch.randn(batch, generator=g),
        3 * torch.randn(batch, generator=g),
        torch.randn(batch, generator=g),
    )
    extras = {"step_in_episode": torch.randint(0, 80, (batch,), generator=g)}
    (eager, eager_hooks), (compiled, compiled_hooks) = sides
    eager_params = [*eager.parameters(), *eager_hooks.critic.parameters()]
    eager_opt = torch.optim.Adam(eager_params, lr=3e-4, eps=1e-5, fused=True)
    compiled_params = [*compiled.parameters(), *compiled_hooks.critic.parameters()]
    compiled_opt = FlatAdam(compiled_params, lr=3e-4, eps=1e-5, fused=True)
    step = update.CompiledUpdate(
        compiled, get(algo), cfg, compiled_opt, compiled_hooks.critic, compiled_hooks
    )
    inputs = compiled_hooks.critic_loss_inputs(extras, batch)
    assert sorted(inputs) == (["target_std"] if algo == "ndppo" else [])
    assert step.prepare(rollout, 64, critic_inputs=compiled_hooks.critic_loss_inputs({}, batch))
    critic_start = [p.detach().clone() for p in compiled_hooks.critic.parameters()]
    for _ in range(4):
        idx = torch.randperm(batch, generator=g)[:64]
        terms = eager.distribution_terms(obs[idx], rollout[1][idx])
        adv = update.normalise_advantages(rollout[3][idx], cfg)
        rows = {k: v[idx] for k, v in extras.items()}
        mb = Minibatch(obs[idx], rollout[1][idx], terms[1], rollout[2][idx], adv, rollout[4][idx], None, rows)
        critic_loss = eager_hooks.critic_loss(mb)
        loss, logs = update.actor_critic_loss(
            get(algo), cfg, terms, rollout[2][idx], adv, rollout[4][idx], rollout[5][idx], critic_loss
        )
        eager_opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(eager_params, cfg.max_grad_norm)
        eager_opt.step()
        compiled_logs = step(rollout, idx, inputs)
        for k, v in logs.items():
            torch.testing.assert_close(compiled_logs[k], v, atol=1e-5, rtol=1e-5)
    for p, q in zip(eager_params, compiled_params, strict=True):
        torch.testing.assert_close(q, p, atol=1e-6, rtol=1e-5)
    moved = [
        (p - s).abs().max() for p, s in zip(compiled_hooks.critic.parameters(), critic_start, strict=True)
    ]
    assert max(moved) > 1e-4  # the critic trained, in both
    eager_state, compiled_state = eager_opt.state_dict(), compiled_opt.state_dict()
    for i, state in eager_state["state"].items():
        for key in ("exp_avg", "exp_avg_sq"):
            torch.testing.assert_close(compiled_state["state"][i][key], state[key], atol=1e-8, rtol=1e-4)
    wrong = {} if algo == "ndppo" else {"target_std": inputs.get("target_std", rollout[4])}
    with pytest.raises(ValueError, match="critic inputs"):
        step(rollout, idx, wrong)


RUN = dict(env_id="CartPole-v1", num_steps=128, num_envs=2, minibatch_size=64, eval_episodes=0)


def test_failed_compile_warns_and_trains_as_the_eager_loop(monkeypatch, tmp_path):
    def no_compiler(graph, inputs, path):
        raise RuntimeError("no C++ compiler here")

    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(aot_cache, "_compile", no_compiler)
    with pytest.warns(RuntimeWarning, match="compiling the update failed.*no C.. compiler"):
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


def test_compile_auto_compiles_long_mlp_runs_and_uses_a_compiled_update_for_short_ones():
    mlp = ActorCritic(OBS, gym.spaces.Discrete(2))
    cnn = ActorCritic(gym.spaces.Box(0, 255, (4, 84, 84), np.uint8), gym.spaces.Discrete(2))
    auto, on, off = (TrainConfig(compile=c) for c in ("auto", "on", "off"))
    long, short = update.COMPILE_AUTO_MIN_STEPS, update.COMPILE_AUTO_MIN_STEPS - 1
    assert update.compile_mode(auto, mlp, False, long) == "compile"
    assert update.compile_mode(auto, mlp, False, short) == "cached"  # compiled already? else eager
    assert (
        update.compile_mode(on, mlp, False, 1) == "compile"
        and update.compile_mode(off, mlp, False, long) is None
    )
    assert update.compile_mode(on, cnn, False, long) is None  # image policies: the eager loop
    assert update.compile_mode(on, mlp, True, long) is None  # a critic hook or extra losses: the eager loop
    with pytest.raises(ValueError, match="compile='yes'.*auto, on, off"):
        update.compile_mode(TrainConfig(compile="yes"), mlp, False, long)


class FakeCompiler:
    """Stands in for AOTInductor: "compiling" writes the traced graph's code to the package path, "loading" runs
    the graph traced last; counts both, so the cache's keying can be checked in milliseconds."""

    def __init__(self):
        self.compiles, self.loads, self.graph = 0, 0, None

    def compile(self, graph, inputs, path):
        self.compiles += 1
        self.graph = graph
        path.write_text(graph.code)

    def load(self, path):
        self.loads += 1
        graph = self.graph
        return lambda tensors: graph(*tensors)


def test_the_compiled_update_is_cached_under_what_it_depends_on(monkeypatch, tmp_path):
    """A later run with the same settings loads the compiled update instead of compiling it; a setting the loss
    reads (clip_coef) compiles anew, one it does not read (the learning rate: an input) does not; a short
    `auto` run ("cached") never compiles."""
    fake = FakeCompiler()
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(aot_cache, "_compile", fake.compile)
    monkeypatch.setattr(aot_cache, "_load", fake.load)
    rollout = (torch.randn(128, 11), torch.randn(128, 3), *(torch.randn(128) for _ in range(4)))

    def prepare(compile_missing=True, **settings):
        cfg = with_algo_defaults(TrainConfig(env_id="Hopper-v5", **settings), "ppo")
        torch.manual_seed(0)
        net = ActorCritic(OBS, gym.spaces.Box(-1, 1, (3,)))
        step = update.CompiledUpdate(net, get("ppo"), cfg, FlatAdam(list(net.parameters()), lr=3e-4))
        return step.prepare(rollout, 64, compile_missing), step

    assert prepare(clip_coef=0.1)[0] and (fake.compiles, fake.loads) == (1, 1)
    ready, step = prepare(clip_coef=0.1, learning_rate=1e-3, seed=7)
    assert ready and (fake.compiles, fake.loads) == (1, 2)  # loaded, not traced again
    assert step(rollout, torch.arange(64)) is not None
    assert not prepare(compile_missing=False, clip_coef=0.3)[0] and fake.compiles == 1
    assert prepare(clip_coef=0.3)[0] and fake.compiles == 2
    index = json.loads(next(tmp_path.glob("ares_control/*.json")).read_text())
    assert "clip_coef" in index["config_fields"] and "learning_rate" not in index["config_fields"]
    assert index["outputs"][:3] == ["policy_loss", "value_loss", "entropy"]


@pytest.mark.slow
def test_ppo_with_the_aot_compiled_update_solves_cartpole_and_a_later_run_loads_it(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "cache"))
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
            out_dir=str(tmp_path / "run"),
        )
    )
    assert summary["eval_mean_return"] >= 475, summary
    assert len(list((tmp_path / "cache" / "ares_control").glob("*.pt2"))) == 1
    # a later process loads it: a short `auto` run of the same settings trains compiled, importing neither
    # dynamo nor inductor (torch.optim would import dynamo)
    script = (
        "import sys, torch\n"
        "from control.config import TrainConfig\n"
        "from control.train import train\n"
        "train(TrainConfig(env_id='CartPole-v1', total_steps=2048, num_envs=4, num_steps=256, "
        f"minibatch_size=256, eval_episodes=0, seed=2, out_dir={str(tmp_path / 'again')!r}, quiet=True))\n"
        "print(sorted(m for m in ('torch._dynamo', 'torch._inductor') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert done.stdout.strip().splitlines()[-1] == "[]", done.stderr[-2000:]
