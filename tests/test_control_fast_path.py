"""The one-env fast path gives what the vector-env path gave, bit for bit: `SingleEnv` steps like a one-env
`SyncVectorEnv` (observations, rewards, flags, same-step autoreset with `final_obs` and the episode statistics in
`final_info`), and training through it gives the same weights and training episodes; `FlatAdam` keeps
`torch.optim.Adam`'s checkpoint format and hands its state over to a real one."""

from __future__ import annotations

import csv

import gymnasium as gym
import numpy as np
import pytest
import torch

import control.train as train_module
from control.config import TrainConfig
from control.env_config import EnvConfig
from control.envs import SingleEnv, make_env, make_vec_env
from control.flat_adam import FlatAdam
from control.train import train


def _sync(cfg: EnvConfig, seed: int) -> gym.vector.VectorEnv:
    return gym.vector.SyncVectorEnv([make_env(cfg, seed)], autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)


@pytest.mark.parametrize("env_id", ["Hopper-v5", "CartPole-v1"])
def test_single_env_steps_like_a_one_env_sync_vector_env(env_id):
    cfg = EnvConfig(env_id=env_id, kwargs={"max_episode_steps": 40} if env_id == "Hopper-v5" else {})
    fast, vector = make_vec_env(cfg, 1, seed=3), _sync(cfg, 3)
    assert isinstance(fast, SingleEnv)
    assert fast.single_action_space == vector.single_action_space
    assert fast.observation_space == vector.observation_space
    for out_fast, out_vector in zip(fast.reset(seed=3), vector.reset(seed=3), strict=True):
        assert np.array_equal(out_fast, out_vector) if isinstance(out_fast, np.ndarray) else True
    rng = np.random.default_rng(0)
    ends = truncations = 0
    for _ in range(600):
        action = np.stack([vector.single_action_space.sample()]) if env_id == "CartPole-v1" else None
        if action is None:  # out of bounds too, so that clipping matters
            action = rng.uniform(-1.5, 1.5, (1, 3)).astype(np.float32)
        got, want = fast.step(action), vector.step(action)
        for a, b in zip(got[:4], want[:4], strict=True):
            assert a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b)
        info, expected = got[4], want[4]
        assert ("final_obs" in info) == ("final_obs" in expected)
        if "final_obs" in info:
            ends += 1
            truncations += int(got[3][0])
            assert np.array_equal(info["final_obs"][0], expected["final_obs"][0])
            episode, expected_episode = info["final_info"]["episode"], expected["final_info"]["episode"]
            assert episode["r"][0] == expected_episode["r"][0] and episode["l"][0] == expected_episode["l"][0]
            assert info["final_info"]["_episode"][0] and info["_final_obs"][0]
        for key in set(expected) - {"final_obs", "_final_obs", "final_info", "_final_info"}:
            assert np.array_equal(info[key], expected[key]), key  # the env's per-step info
    assert ends >= 3 and (env_id == "CartPole-v1" or truncations >= 1)
    fast.close()
    vector.close()


def test_single_env_passes_per_step_info_only_when_asked():
    env = make_vec_env(EnvConfig(env_id="Hopper-v5"), 1, seed=0, step_info=False)
    env.reset(seed=0)
    assert env.step(np.zeros((1, 3), np.float32))[4] == {}
    env.close()


RUNS = {
    "ppo-hopper": dict(algo="ppo", env_id="Hopper-v5", total_steps=2048, num_steps=512),
    "sppo-hopper-bins": dict(
        algo="sppo", env_id="Hopper-v5", total_steps=1024, num_steps=512, discretize_bins=11
    ),
    "a2c-cartpole": dict(algo="a2c", env_id="CartPole-v1", total_steps=1000),
}


@pytest.mark.parametrize("name", list(RUNS))
def test_training_on_the_fast_path_equals_the_vector_env_path(monkeypatch, tmp_path, name):
    """Fixed seeds, eager update: the same weights and training episodes bit for bit (the algorithm is the same;
    only the env plumbing differs)."""
    results = {}
    for path in ("fast", "vector"):
        if path == "vector":
            monkeypatch.setattr(train_module, "make_vec_env", lambda cfg, n, seed, *a, **k: _sync(cfg, seed))
        out = tmp_path / path
        train(TrainConfig(**RUNS[name], seed=5, compile="off", eval_episodes=0, out_dir=str(out), quiet=True))
        state = torch.load(out / "checkpoint.pt", weights_only=True)
        with (out / "episodes.csv").open() as f:
            results[path] = (state["agent"], list(csv.reader(f)))
    (fast_weights, fast_episodes), (weights, episodes) = results["fast"], results["vector"]
    assert len(episodes) > 5 and fast_episodes == episodes
    for key, value in weights.items():
        assert torch.equal(fast_weights[key], value), key


def _adam_pair() -> tuple[list[torch.nn.Parameter], list[torch.nn.Parameter]]:
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))
    return list(net.parameters()), [torch.nn.Parameter(p.detach().clone()) for p in net.parameters()]


def _step(optimizer: torch.optim.Optimizer, params: list[torch.nn.Parameter], seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    for p in params:
        p.grad = torch.randn(p.shape, generator=g)
    optimizer.step()


def test_flat_adam_has_torch_adams_checkpoint_format_and_hands_its_state_over():
    kwargs = {"lr": 3e-4, "eps": 1e-5, "fused": True}
    params, twin = _adam_pair()
    reference = torch.optim.Adam(params, **kwargs)
    flat = FlatAdam(twin, **kwargs)
    assert all(p.data_ptr() != q.data_ptr() for p, q in zip(params, twin, strict=True))
    # the same hyperparameter record as torch's (an empty-state torch optimizer loads ours and the other way)
    assert flat.state_dict()["param_groups"] == reference.state_dict()["param_groups"]
    for seed in range(3):
        _step(reference, params, seed)
    flat.load_state_dict(reference.state_dict())
    with torch.no_grad():
        for p, q in zip(twin, params, strict=True):
            p.copy_(q)
    saved = flat.state_dict()
    for i, state in reference.state_dict()["state"].items():
        assert float(saved["state"][i]["step"]) == float(state["step"]) == 3.0
        for key in ("exp_avg", "exp_avg_sq"):
            assert torch.equal(saved["state"][i][key], state[key])
    handed = flat.torch_adam()  # continues exactly where torch's own optimizer is
    for seed in (10, 11):
        _step(reference, params, seed)
        _step(handed, twin, seed)
    for p, q in zip(params, twin, strict=True):
        assert torch.equal(p, q)
    with pytest.raises(TypeError, match="not torch.optim.Adam arguments"):
        FlatAdam(twin, momentum=0.9)


def test_subprocess_envs_step_like_a_sync_vector_env():
    """The lean parallel envs (`--async-envs` when nothing reads each step's info): the same observations,
    rewards, flags, final observations and episode statistics as a `SyncVectorEnv` of the same envs."""
    cfg = EnvConfig(env_id="Hopper-v5", kwargs={"max_episode_steps": 30})
    fast = make_vec_env(cfg, 3, seed=4, asynchronous=True, step_info=False)
    vector = gym.vector.SyncVectorEnv(
        [make_env(cfg, 4 + i) for i in range(3)], autoreset_mode=gym.vector.AutoresetMode.SAME_STEP
    )
    assert type(fast).__name__ == "SubprocessEnvs"
    assert np.array_equal(fast.reset(seed=4)[0], vector.reset(seed=4)[0])
    rng = np.random.default_rng(1)
    ends = 0
    for _ in range(200):
        action = rng.uniform(-1.5, 1.5, (3, 3)).astype(np.float32)
        got, want = fast.step(action), vector.step(action)
        for a, b in zip(got[:4], want[:4], strict=True):
            assert a.dtype == b.dtype and np.array_equal(a, b)
        info, expected = got[4], want[4]
        assert np.array_equal(
            info.get("_final_obs", np.zeros(3, bool)), expected.get("_final_obs", np.zeros(3, bool))
        )
        for i in np.flatnonzero(expected.get("_final_obs", [])):
            ends += 1
            assert np.array_equal(info["final_obs"][i], expected["final_obs"][i])
            for key in ("r", "l"):
                assert info["final_info"]["episode"][key][i] == expected["final_info"]["episode"][key][i]
    assert ends >= 6
    fast.close()
    vector.close()
    assert not any(p.is_alive() for p in fast.processes)


class BreaksOnOddSeeds(gym.Env):
    """Steps fine when reset with an even seed, raises otherwise (so only the subprocess env fails)."""

    observation_space = gym.spaces.Box(-1.0, 1.0, (3,), np.float32)
    action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.odd = bool(seed is not None and seed % 2)
        return np.zeros(3, np.float32), {}

    def step(self, action):
        if self.odd:
            raise ValueError("this env breaks on odd seeds")
        return np.zeros(3, np.float32), 0.0, False, False, {}


def test_subprocess_envs_report_an_env_error_with_its_traceback():
    gym.register("BreaksOnOddSeeds-v0", entry_point=BreaksOnOddSeeds, disable_env_checker=True)
    env = make_vec_env(EnvConfig(env_id="BreaksOnOddSeeds-v0"), 2, seed=0, asynchronous=True, step_info=False)
    env.reset(seed=0)
    with pytest.raises(
        RuntimeError, match="env 1 .in a subprocess. failed:(.|\n)*this env breaks on odd seeds"
    ):
        env.step(np.zeros((2, 1), np.float32))
    env.close()


def test_training_with_subprocess_envs_equals_the_sync_vector_env_path(monkeypatch, tmp_path):
    kwargs = dict(env_id="Hopper-v5", total_steps=2048, num_envs=2, num_steps=512, seed=6, compile="off")
    results = {}
    for name, asynchronous in (("processes", True), ("sync", False)):
        out = tmp_path / name
        train(TrainConfig(**kwargs, async_envs=asynchronous, eval_episodes=0, out_dir=str(out), quiet=True))
        state = torch.load(out / "checkpoint.pt", weights_only=True)
        with (out / "episodes.csv").open() as f:
            results[name] = (state["agent"], list(csv.reader(f)))
    (weights, episodes), (sync_weights, sync_episodes) = results["processes"], results["sync"]
    assert len(episodes) > 5 and episodes == sync_episodes
    for key, value in sync_weights.items():
        assert torch.equal(weights[key], value), key
