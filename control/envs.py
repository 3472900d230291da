"""Environment construction for gymnasium Atari (ale-py), MuJoCo and Box2D, with the symmetric-loss paper's
reward-noise wrappers and an action-discretisation wrapper.

Wrapper order per env: episode statistics first (so logged returns are the true, noiseless ones), then the
standard stack, then reward noise, then (for vector observations) observation/reward normalisation.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np

from align.user_errors import UserError, did_you_mean
from control.env_config import EnvConfig, is_atari
from control.mujoco_notices import quiet_model_deprecations


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


class EpisodeEndInfo(gym.Wrapper):
    """Passes a step's info on only when the step ends an episode, where a vector env reports it (as
    `final_info`, with the episode statistics): vector envs turn every step's info into arrays, a tenth of a
    MuJoCo step per env, for keys the training loop never reads."""

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        return obs, reward, terminated, truncated, info if terminated or truncated else {}


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


def env_kwargs_problem(env_id: str, kwargs: dict[str, Any]) -> str | None:
    """Why `env_id` cannot be built with `kwargs` (an unknown keyword, a value its constructor refuses, a file it
    names that is not there), or None; builds the env once, and only when there are kwargs."""
    if not kwargs:
        return None
    quiet_model_deprecations(env_id)
    try:
        gym.make(env_id, **kwargs).close()
    except (
        TypeError,
        ValueError,
        OSError,
    ) as exc:  # gymnasium re-raises the constructor's error with the kwargs
        return str(exc).split(" was raised from the environment creator")[0]
    return None


def check_env_kwargs(env_id: str, kwargs: dict[str, Any]) -> None:
    """A `UserError` naming `--env-kwargs` when `env_id` cannot be built with `kwargs`."""
    if problem := env_kwargs_problem(env_id, kwargs):
        raise UserError(f"--env-kwargs {kwargs!r}: {env_id} refuses them: {problem}")


def has_continuous_actions(cfg: EnvConfig) -> bool:
    """Whether the env's action space is a Box (Atari's never is)."""
    if is_atari(cfg.env_id):
        return False
    quiet_model_deprecations(cfg.env_id)
    env = gym.make(cfg.env_id, **cfg.kwargs)
    try:
        return isinstance(env.action_space, gym.spaces.Box)
    finally:
        env.close()


def make_env(
    cfg: EnvConfig,
    seed: int,
    evaluation: bool = False,
    render_mode: str | None = None,
    step_info: bool = True,
) -> Callable[[], gym.Env]:
    """A thunk for vector envs. `evaluation=True` builds the noiseless env (normalisation is applied by the
    caller with frozen statistics); `render_mode` is gymnasium's (`rgb_array` for videos); without
    `step_info`, infos only at episode ends (`EpisodeEndInfo`)."""
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
            quiet_model_deprecations(cfg.env_id)
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
        return env if step_info else EpisodeEndInfo(env)

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
        if self.returns.shape[0] == 1:
            return self._reward_of_one(float(reward[0]), bool(done[0]))
        self.returns = self.returns * self.gamma + reward
        if self.training:
            self.ret_mean, self.ret_var, self.ret_count = self._update(
                self.ret_mean, self.ret_var, self.ret_count, self.returns
            )
        self.returns[done] = 0.0
        return _clip_to_float32(reward / np.sqrt(self.ret_var + 1e-8), self.clip)

    def _reward_of_one(self, reward: float, done: bool) -> np.ndarray:
        """`reward` for one env: the same float64 arithmetic on Python floats (a tenth of the numpy calls)."""
        ret = float(self.returns[0]) * self.gamma + reward
        if self.training:
            delta, total = ret - self.ret_mean, self.ret_count + 1
            self.ret_mean, self.ret_var, self.ret_count = (
                self.ret_mean + delta / total,
                (self.ret_var + delta * delta / total) * (self.ret_count / total),
                total,
            )
        self.returns[0] = 0.0 if done else ret
        scaled = reward / math.sqrt(self.ret_var + 1e-8)
        return np.array([min(max(scaled, -self.clip), self.clip)], np.float32)

    def state_dict(self) -> dict:
        return {
            k: getattr(self, k)
            for k in ("obs_mean", "obs_var", "obs_count", "ret_mean", "ret_var", "ret_count")
        }

    def load_state_dict(self, state: dict) -> None:
        for k, v in state.items():
            setattr(self, k, v)


class SingleEnv(gym.vector.VectorEnv):
    """One env as a vector env of one, without `SyncVectorEnv`'s per-step machinery (its per-env loop, action
    iteration, info arrays, observation concatenation into a deep-copied batch), which costs about a third of
    the simulator's own time on a Hopper step (CPU time, measured). Same-step autoreset as our `SyncVectorEnv`:
    on a step that ends an episode the observation is the reset one and `info` holds `final_obs` and
    `final_info` (with the episode statistics) in vector form."""

    metadata = {"autoreset_mode": gym.vector.AutoresetMode.SAME_STEP}

    def __init__(self, env_fn: Callable[[], gym.Env]):
        self.env = env_fn()
        self.num_envs = 1
        self.single_observation_space = self.env.observation_space
        self.single_action_space = self.env.action_space
        self.observation_space = gym.vector.utils.batch_space(self.single_observation_space, 1)
        self.action_space = gym.vector.utils.batch_space(self.single_action_space, 1)
        self.spec, self.render_mode = self.env.spec, self.env.render_mode
        self._obs_dtype = self.single_observation_space.dtype

    def _batch(self, obs: Any) -> np.ndarray:
        """`obs` with a batch axis of one, copied (an env may reuse its observation buffer)."""
        return np.array(obs, dtype=self._obs_dtype)[None]

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        obs, info = self.env.reset(seed=seed, options=options)
        return self._batch(obs), self._add_info({}, info, 0)

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict]:
        obs, reward, terminated, truncated, info = self.env.step(actions[0])
        infos = {}
        if terminated or truncated:
            infos = self._add_info(infos, {"final_obs": obs, "final_info": info}, 0)
            obs, info = self.env.reset()
        if info:
            infos = self._add_info(infos, info, 0)
        return (
            self._batch(obs),
            np.array([reward], np.float64),
            np.array([terminated], np.bool_),
            np.array([truncated], np.bool_),
            infos,
        )

    def close_extras(self, **kwargs: Any) -> None:
        self.env.close()


def make_vec_env(
    cfg: EnvConfig, num_envs: int, seed: int, asynchronous: bool = False, step_info: bool = True
) -> gym.vector.VectorEnv:
    """`num_envs` envs seeded `seed`, `seed + 1`, ... with same-step autoreset: one `SingleEnv`, a
    `SyncVectorEnv` of several, or with `asynchronous` envs in parallel processes. Without `step_info` (nothing
    reads each step's info), infos only at episode ends, and the parallel envs are our lean `SubprocessEnvs`
    instead of gymnasium's `AsyncVectorEnv`."""
    fns = [make_env(cfg, seed + i, step_info=step_info) for i in range(num_envs)]
    same_step = gym.vector.AutoresetMode.SAME_STEP
    if asynchronous and not step_info:
        from control.subproc_envs import SubprocessEnvs

        return SubprocessEnvs(fns)
    if asynchronous:
        return gym.vector.AsyncVectorEnv(fns, autoreset_mode=same_step)
    return SingleEnv(fns[0]) if num_envs == 1 else gym.vector.SyncVectorEnv(fns, autoreset_mode=same_step)
