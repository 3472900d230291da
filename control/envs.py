"""Environment construction for gymnasium Atari (ale-py), MuJoCo and Box2D, with the symmetric-loss paper's
reward-noise wrappers and an action-discretisation wrapper.

Wrapper order per env: episode statistics first (so logged returns are the true, noiseless ones), then the
standard stack, then reward noise, then (for vector observations) observation/reward normalisation.
"""

from __future__ import annotations

from collections.abc import Callable

import gymnasium as gym
import numpy as np

from align.user_errors import UserError, did_you_mean
from control.env_config import EnvConfig, is_atari


class RewardSignFlip(gym.RewardWrapper):
    """With probability p the (clipped) reward r becomes -r (the symmetric-loss paper's Atari noise)."""

    def __init__(self, env: gym.Env, p: float, seed: int | None = None):
        super().__init__(env)
        self.p, self.rng = p, np.random.default_rng(seed)

    def reward(self, reward: float) -> float:
        return -reward if self.rng.random() < self.p else reward


class GaussianRewardNoise(gym.RewardWrapper):
    """r + N(0, sigma^2) (the symmetric-loss paper's MuJoCo/Box2D noise)."""

    def __init__(self, env: gym.Env, sigma: float, seed: int | None = None):
        super().__init__(env)
        self.sigma, self.rng = sigma, np.random.default_rng(seed)

    def reward(self, reward: float) -> float:
        return reward + self.sigma * self.rng.standard_normal()


class DiscretizeAction(gym.ActionWrapper):
    """A Box action space as MultiDiscrete with `bins` evenly spaced values per dimension (authors: 11)."""

    def __init__(self, env: gym.Env, bins: int = 11):
        super().__init__(env)
        space = env.action_space
        assert isinstance(space, gym.spaces.Box), "DiscretizeAction needs a Box action space"
        self.values = np.linspace(space.low, space.high, bins, axis=-1).astype(np.float32)  # (dims, bins)
        self.action_space = gym.spaces.MultiDiscrete([bins] * space.shape[0])

    def action(self, action: np.ndarray) -> np.ndarray:
        return self.values[np.arange(len(action)), np.asarray(action, dtype=np.int64)]


class EpisodicLife(gym.Wrapper):
    """Atari: a lost life ends the episode for learning; the game resets only when it is really over."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        self.lives, self.game_over = 0, True

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.game_over = terminated or truncated
        lives = self.env.unwrapped.ale.lives()
        if 0 < lives < self.lives:
            terminated = True
        self.lives = lives
        return obs, reward, terminated, truncated, info

    def reset(self, **kwargs):
        if self.game_over:
            obs, info = self.env.reset(**kwargs)
        else:
            obs, _, terminated, truncated, info = self.env.step(0)
            if terminated or truncated:
                obs, info = self.env.reset(**kwargs)
        self.lives = self.env.unwrapped.ale.lives()
        return obs, info


class FireReset(gym.Wrapper):
    """Atari games that wait for FIRE after a reset."""

    def reset(self, **kwargs):
        self.env.reset(**kwargs)
        obs, _, terminated, truncated, info = self.env.step(1)
        if terminated or truncated:
            obs, info = self.env.reset(**kwargs)
        return obs, info


def check_env_id(env_id: str) -> None:
    """A `UserError` naming `--env` (and the closest registered id) when gymnasium has no such id; Atari ids
    register ale-py's envs first."""
    if env_id not in gym.registry and (is_atari(env_id) or env_id.startswith("ALE")):
        import ale_py

        gym.register_envs(ale_py)
    if env_id not in gym.registry:
        raise UserError(
            f"unknown environment (--env) {env_id!r}{did_you_mean(env_id, gym.registry.keys())}; list the ids "
            "with: python -c 'import gymnasium, control; gymnasium.pprint_registry()'"
        )


def has_continuous_actions(cfg: EnvConfig) -> bool:
    """Whether the env's action space is a Box (Atari's never is)."""
    if is_atari(cfg.env_id):
        return False
    env = gym.make(cfg.env_id, **cfg.kwargs)
    try:
        return isinstance(env.action_space, gym.spaces.Box)
    finally:
        env.close()


def make_env(
    cfg: EnvConfig, seed: int, evaluation: bool = False, render_mode: str | None = None
) -> Callable[[], gym.Env]:
    """A thunk for vector envs. `evaluation=True` builds the noiseless env (normalisation is applied by the
    caller with frozen statistics); `render_mode` is gymnasium's (`rgb_array` for videos)."""
    render = {"render_mode": render_mode} if render_mode else {}

    def thunk() -> gym.Env:
        if is_atari(cfg.env_id):
            import ale_py

            gym.register_envs(ale_py)
            env = gym.make(
                cfg.env_id, frameskip=1, repeat_action_probability=0.0, full_action_space=False, **render
            )
            env = gym.wrappers.RecordEpisodeStatistics(env)
            env = gym.wrappers.AtariPreprocessing(
                env, noop_max=30, frame_skip=4, screen_size=84, grayscale_obs=True
            )
            if not evaluation:
                env = EpisodicLife(env)
            if "FIRE" in env.unwrapped.get_action_meanings():
                env = FireReset(env)
            if not evaluation:
                env = gym.wrappers.TransformReward(env, lambda r: float(np.sign(r)))
                if cfg.reward_flip_p > 0:
                    env = RewardSignFlip(env, cfg.reward_flip_p, seed + 10_000)
            env = gym.wrappers.FrameStackObservation(env, 4)
        else:
            env = gym.make(cfg.env_id, **{**cfg.kwargs, **render})
            env = gym.wrappers.RecordEpisodeStatistics(env)
            if isinstance(env.action_space, gym.spaces.Box):
                env = (
                    DiscretizeAction(env, cfg.discretize_bins)
                    if cfg.discretize_bins
                    else gym.wrappers.ClipAction(env)
                )
            if not evaluation and cfg.reward_noise_sigma > 0:
                env = GaussianRewardNoise(env, cfg.reward_noise_sigma, seed + 10_000)
            if cfg.reward_flip_p > 0 and not evaluation:
                env = RewardSignFlip(env, cfg.reward_flip_p, seed + 20_000)
        env.action_space.seed(seed)
        return env

    return thunk


def _clip_to_float32(x: np.ndarray, bound: float) -> np.ndarray:
    """clip(x, -bound, bound) as float32, in two ufunc calls (np.clip's wrappers cost more than its work)."""
    np.maximum(x, -bound, out=x)
    return np.minimum(x, bound, out=np.empty(x.shape, np.float32))


class VecNormalize:
    """Running mean/std normalisation of observations and discounted-return reward scaling for a vector env,
    with state that checkpoints save and evaluation reuses frozen."""

    def __init__(self, obs_shape: tuple[int, ...], num_envs: int, gamma: float, clip: float = 10.0):
        self.obs_mean, self.obs_var, self.obs_count = np.zeros(obs_shape), np.ones(obs_shape), 1e-4
        self.ret_var, self.ret_mean, self.ret_count = 1.0, 0.0, 1e-4
        self.returns = np.zeros(num_envs)
        self.gamma, self.clip, self.training = gamma, clip, True

    @staticmethod
    def _update(mean, var, count, batch):
        b_count = batch.shape[0]
        if b_count == 1:  # one env (every rollout step): the same update in fewer numpy calls
            delta, total = batch[0] - mean, count + 1
            return mean + delta / total, (var + delta * delta / total) * (count / total), total
        b_mean, b_var = batch.mean(0), batch.var(0)
        delta, total = b_mean - mean, count + b_count
        mean = mean + delta * b_count / total
        var = (var * count + b_var * b_count + delta**2 * count * b_count / total) / total
        return mean, var, total

    def obs(self, obs: np.ndarray) -> np.ndarray:
        if self.training:
            self.obs_mean, self.obs_var, self.obs_count = self._update(
                self.obs_mean, self.obs_var, self.obs_count, obs
            )
        return self.apply_obs(obs)

    def apply_obs(self, obs: np.ndarray) -> np.ndarray:
        """Normalise with the current statistics, without updating them."""
        scaled = (obs - self.obs_mean) / np.sqrt(self.obs_var + 1e-8)
        return _clip_to_float32(scaled, self.clip)

    def reward(self, reward: np.ndarray, done: np.ndarray) -> np.ndarray:
        self.returns = self.returns * self.gamma + reward
        if self.training:
            self.ret_mean, self.ret_var, self.ret_count = self._update(
                self.ret_mean, self.ret_var, self.ret_count, self.returns
            )
        self.returns[done] = 0.0
        return _clip_to_float32(reward / np.sqrt(self.ret_var + 1e-8), self.clip)

    def state_dict(self) -> dict:
        return {
            k: getattr(self, k)
            for k in ("obs_mean", "obs_var", "obs_count", "ret_mean", "ret_var", "ret_count")
        }

    def load_state_dict(self, state: dict) -> None:
        for k, v in state.items():
            setattr(self, k, v)


def make_vec_env(
    cfg: EnvConfig, num_envs: int, seed: int, asynchronous: bool = False
) -> gym.vector.VectorEnv:
    fns = [make_env(cfg, seed + i) for i in range(num_envs)]
    cls = gym.vector.AsyncVectorEnv if asynchronous else gym.vector.SyncVectorEnv
    return cls(fns, autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
