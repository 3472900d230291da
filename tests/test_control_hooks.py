"""The shared loop's hooks: a reward term reaches the stored rewards, per-step records reach the minibatches,
extra losses and logs are used, hook state is checkpointed; one default table; the CLI lists the algorithms."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from control.__main__ import main as cli
from control.algo_names import BUILTIN_ALGORITHMS
from control.algos.registry import ALGORITHMS
from control.config import DEFAULTS, TrainConfig, algo_defaults, with_algo_defaults
from control.hooks import LoopHooks, Minibatch, StepRecord
from control.train import train

RUN = dict(env_id="CartPole-v1", num_steps=64, num_envs=2, eval_episodes=0, normalize=False, update_epochs=1)


class CountingHooks(LoopHooks):
    """Adds +10 to every reward, records each step's env index, and checks what the loop hands over."""

    def __init__(self) -> None:
        self.steps = self.rollouts = self.extra_calls = 0
        self.seen_index: list[torch.Tensor] = []
        self.restored = None

    def reward_term(self, step: StepRecord) -> np.ndarray:
        assert step.obs.shape == (2, 4) and step.raw_obs.shape == (2, 4) and step.log_prob.shape == (2,)
        assert step.true_next_obs().shape == (2, 4)
        self.steps += 1
        return np.full(2, 10.0)

    def observe(self, reward: np.ndarray, done: np.ndarray) -> dict[str, np.ndarray]:
        assert (reward >= 10.0).all()  # the term reached the stored rewards (no normalisation here)
        return {"env_index": np.arange(2, dtype=np.int64)}

    def after_rollout(self) -> None:
        self.rollouts += 1

    def extra_loss(self, mb: Minibatch) -> tuple[torch.Tensor, dict[str, float]]:
        self.extra_calls += 1
        self.seen_index.append(mb.extras["env_index"])
        assert mb.returns.min() > 10.0  # returns carry the +10 per step
        return 0.0 * mb.log_prob.sum(), {"extra": 1.0}

    def logs(self) -> dict[str, float]:
        return {"hooks/rollouts": float(self.rollouts)}

    def state_dict(self) -> dict:
        return {"rollouts": self.rollouts}

    def load_state_dict(self, state: dict) -> None:
        self.restored = state


def test_hooks_add_reward_records_losses_and_state(tmp_path):
    hooks = CountingHooks()
    train(TrainConfig(out_dir=str(tmp_path), total_steps=256, minibatch_size=64, **RUN), hooks)
    assert hooks.steps == 128 and hooks.rollouts == 2 and hooks.extra_calls == 2 * 2
    index = torch.cat(hooks.seen_index)
    assert sorted(index.tolist()) == [0] * 128 + [1] * 128  # every stored record, once per epoch
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert state["hooks"] == {"rollouts": 2}
    resumed = CountingHooks()
    train(TrainConfig(out_dir=str(tmp_path), total_steps=384, minibatch_size=64, **RUN), resumed)
    assert resumed.restored == {"rollouts": 2} and resumed.rollouts == 1


class ConstantCritic(torch.nn.Module):
    """A critic replacing the value head: a one-layer MLP whose loss pulls it to 3."""

    def __init__(self) -> None:
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(4, 2))

    def value(self, obs: torch.Tensor) -> torch.Tensor:
        return self.net(obs).mean(-1)


class CriticHooks(LoopHooks):
    def setup(self, ctx) -> None:
        self.critic = ConstantCritic()

    def critic_loss(self, mb: Minibatch) -> torch.Tensor:
        return ((self.critic.value(mb.obs) - 3.0) ** 2).mean()


def test_a_critic_hook_replaces_the_value_head_and_is_checkpointed(tmp_path):
    hooks = CriticHooks()
    train(
        TrainConfig(
            out_dir=str(tmp_path),
            total_steps=4096,
            minibatch_size=32,
            learning_rate=3e-2,
            anneal_lr=False,
            **RUN,
        ),
        hooks,
    )
    obs = torch.randn(64, 4) * 0.1
    assert (hooks.critic.value(obs) - 3.0).abs().max() < 0.5
    saved = torch.load(tmp_path / "checkpoint.pt", weights_only=True)["critic"]
    assert torch.equal(saved["net.0.weight"], hooks.critic.net[0].weight.detach())


def test_one_default_table_fills_unset_fields():
    assert set(DEFAULTS) == {
        "num_envs",
        "num_steps",
        "update_epochs",
        "minibatch_size",
        "learning_rate",
        "gae_lambda",
        "clip_coef",
        "ent_coef",
        "norm_adv",
    }
    assert algo_defaults("ppo", "Hopper-v5")["num_steps"] == 2048
    assert algo_defaults("a2c", "ALE/Pong-v5")["num_envs"] == 16
    assert algo_defaults("ppo", "ALE/Pong-v5")["clip_coef"] == 0.1
    filled = with_algo_defaults(TrainConfig(env_id="CartPole-v1", num_steps=7), "a2c")
    assert filled.num_steps == 7 and filled.learning_rate == 7e-4 and filled.norm_adv is False
    with pytest.raises(ValueError, match="update family 'dqn'"):
        algo_defaults("dqn", "CartPole-v1")


def test_train_help_lists_the_registered_algorithms(capsys):
    with pytest.raises(SystemExit):
        cli(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for name in ALGORITHMS:
        assert f"{name}: " in text
    assert {"ppo", "sppo", "a2c", "sa2c", "ppg", "ndppo", "ndppo-nobonus", "qppo"} <= set(ALGORITHMS)
    assert set(ALGORITHMS) == set(BUILTIN_ALGORITHMS)  # the CLI's light list names every registered algorithm
    assert all(ALGORITHMS[n].description == BUILTIN_ALGORITHMS[n] for n in ALGORITHMS)


def test_numpy_sampler_values_come_from_a_replacing_critic():
    import gymnasium as gym

    from control.algos.ndppo_critic import QuantileCritic
    from control.networks import ActorCritic
    from control.samplers import make_sampler

    obs_space = gym.spaces.Box(-1, 1, (4,))
    agent, critic = ActorCritic(obs_space, gym.spaces.Discrete(2)), QuantileCritic(4, 8, 16)
    sampler = make_sampler(agent, 0, critic)
    obs = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    expected = critic.value(torch.from_numpy(obs)).detach().numpy()
    np.testing.assert_allclose(sampler.value(obs), expected, atol=1e-5)
    np.testing.assert_allclose(sampler.act(obs)[2], expected, atol=1e-5)
