"""One rollout: its buffers (`Rollout`), what carries over between rollouts (`EnvState`), and the loop that fills
it (`collect_rollout`), shared by the training loop and the rollout worker processes (`control.rollout_workers`)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from control.config import TrainConfig
from control.envs import VecNormalize
from control.hooks import LoopHooks, StepRecord, overrides
from control.samplers import Sampler


class EpisodeSink(Protocol):
    """Where `collect_rollout` reports finished episodes (`control.run.RunLog`, or a worker's record)."""

    def finished_episodes(self, info: dict[str, Any], step: int) -> None: ...


@dataclass
class Rollout:
    """One rollout in numpy (the env's currency), `num_steps` x `num_envs`; `extras` holds the per-step
    records of `hooks.observe`."""

    obs: np.ndarray
    actions: np.ndarray
    log_probs: np.ndarray
    rewards: np.ndarray
    dones: np.ndarray
    values: np.ndarray
    extras: dict[str, np.ndarray] = field(default_factory=dict)

    @classmethod
    def allocate(cls, steps: int, envs: int, obs_shape: tuple, act_shape: tuple, image: bool) -> Rollout:
        obs = np.zeros((steps, envs, *obs_shape), np.uint8 if image else np.float32)
        actions = np.zeros((steps, envs, *act_shape), np.float32)
        log_probs, rewards, dones, values = (np.zeros((steps, envs), np.float32) for _ in range(4))
        return cls(obs, actions, log_probs, rewards, dones, values)


@dataclass
class EnvState:
    """What carries over from one rollout to the next: the env's last raw observation, the policy's input
    made from it, and whether each env's episode just ended."""

    raw: np.ndarray
    obs: np.ndarray
    done: np.ndarray


def collect_rollout(
    envs: Any,
    sampler: Sampler,
    norm: VecNormalize | None,
    hooks: LoopHooks,
    buf: Rollout,
    state: EnvState,
    cfg: TrainConfig,
    log: EpisodeSink,
    global_step: int,
    clock: dict[str, float],
) -> int:
    """Fill `buf` with `cfg.num_steps` steps of every env (rewards normalised, time limits bootstrapped with
    gamma * V(final obs), hook reward terms added); returns the new global step."""
    num_envs = cfg.num_envs
    env_act_shape = (num_envs, *envs.single_action_space.shape)
    use_reward_term, use_observe = overrides(hooks, "reward_term"), overrides(hooks, "observe")
    for step in range(cfg.num_steps):
        global_step += num_envs
        buf.obs[step], buf.dones[step] = state.obs, state.done
        tick = time.perf_counter()
        action, buf.log_probs[step], buf.values[step] = sampler.act(state.obs)
        buf.actions[step] = action.reshape(env_act_shape)
        tock = time.perf_counter()
        raw_obs = state.raw
        raw, reward, terminated, truncated, info = envs.step(action)
        clock["policy"] += tock - tick
        clock["env"] += time.perf_counter() - tock
        done = np.logical_or(terminated, truncated)
        if use_reward_term:
            record = StepRecord(
                state.obs, raw_obs, action, buf.log_probs[step], raw, terminated, truncated, info
            )
            term = hooks.reward_term(record)
            if term is not None:
                reward = np.asarray(reward, np.float64) + term
        reward = norm.reward(np.asarray(reward, np.float64), done) if norm else reward
        if "final_obs" in info and truncated.any():  # bootstrap time limits: r += gamma * V(final obs)
            reward = np.array(reward, np.float32)
            for i in np.flatnonzero(truncated & ~terminated):
                final = info["final_obs"][i][None]
                reward[i] += cfg.gamma * sampler.value(norm.apply_obs(final) if norm else final)[0]
        buf.rewards[step] = reward
        if use_observe:
            for name, value in hooks.observe(buf.rewards[step], done).items():
                if name not in buf.extras:
                    buf.extras[name] = np.zeros((cfg.num_steps, num_envs), np.asarray(value).dtype)
                buf.extras[name][step] = value
        state.raw = raw
        state.obs = norm.obs(raw) if norm else np.asarray(raw)
        state.done = done
        log.finished_episodes(info, global_step)
    return global_step
