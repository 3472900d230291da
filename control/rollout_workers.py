"""Rollouts collected by several processes at once (`--rollout-workers N`).

`--num-envs` is split into N shares: the main process steps the first, each of N - 1 worker processes its own,
each with its own copy of the policy (a `control.samplers.NumpyPolicy`) and of the normalisation statistics. The
processes meet once per rollout (the policy's arrays and the statistics go out, the share's rollout comes back),
not once per step: on a virtual machine, waking another process and waiting for it costs about what a MuJoCo
step saves, so envs stepped in parallel per step (`--async-envs`) gain nothing on Hopper, while shares do.

What differs from one process stepping every env in turn (the algorithm is the same; numbers are not bitwise):
within a rollout each share normalises with the statistics as of the rollout's start plus its own observations
(every observation and return a share fed its copy is merged into the run's statistics at the rollout's end, so
after each rollout they equal one process's up to float rounding), and share i > 0 samples its actions with its
own generator, seeded (seed, i).
"""

from __future__ import annotations

import dataclasses
import multiprocessing as mp
import signal
import time
import traceback
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from control.config import TrainConfig
from control.envs import VecNormalize, make_vec_env
from control.hooks import LoopHooks, overrides
from control.rollout import EnvState, Rollout, collect_rollout
from control.run import RunLog, episode_ends
from control.samplers import NumpyMLPSampler, NumpyPolicy
from control.subproc_envs import stop_processes

# what the loop calls per step or per rollout, which a worker process cannot run
PER_STEP_HOOKS = ("reward_term", "observe", "after_rollout", "restore_envs")


def share_bounds(num_envs: int, workers: int) -> list[tuple[int, int]]:
    """The env index ranges of `workers` shares of `num_envs` envs, sizes differing by at most one."""
    sizes = [num_envs // workers + (1 if i < num_envs % workers else 0) for i in range(workers)]
    edges = np.cumsum([0, *sizes])
    return [(int(lo), int(hi)) for lo, hi in zip(edges[:-1], edges[1:], strict=True)]


def unsupported(hooks: LoopHooks, image_obs: bool) -> str | None:
    """Why a run cannot collect its rollouts in worker processes, or None."""
    if image_obs:
        return "image observations (the CNN samples with torch)"
    names = [name for name in PER_STEP_HOOKS if overrides(hooks, name)]
    return f"an algorithm with per-step hooks ({', '.join(names)})" if names else None


class RecordingNormalize(VecNormalize):
    """A share's copy of the normalisation statistics that keeps what updated them since `take_seen`."""

    def __init__(self, obs_shape: tuple[int, ...], num_envs: int, gamma: float):
        super().__init__(obs_shape, num_envs, gamma)
        self.seen_obs: list[np.ndarray] = []
        self.seen_returns: list[np.ndarray] = []

    def obs(self, obs: np.ndarray) -> np.ndarray:
        if self.training:
            self.seen_obs.append(np.array(obs, np.float64))
        return super().obs(obs)

    def reward(self, reward: np.ndarray, done: np.ndarray) -> np.ndarray:
        if self.training:  # the discounted returns the statistics are updated with (as `VecNormalize.reward`)
            self.seen_returns.append(self.returns * self.gamma + np.asarray(reward, np.float64))
        return super().reward(reward, done)

    def take_seen(self) -> tuple[np.ndarray, np.ndarray]:
        """(observations, returns) that updated the statistics since the last call, flat over steps and envs."""
        obs = np.concatenate(self.seen_obs) if self.seen_obs else np.zeros((0, *self.obs_mean.shape))
        returns = np.concatenate(self.seen_returns) if self.seen_returns else np.zeros(0)
        self.seen_obs, self.seen_returns = [], []
        return obs, returns


def merge_statistics(norm: VecNormalize, obs: list[np.ndarray], returns: list[np.ndarray]) -> None:
    """Update `norm`'s running statistics with every share's observations and returns, as one batch each (the
    parallel form of the running mean and variance: what feeding them one at a time gives, up to rounding)."""
    all_obs = np.concatenate(obs)
    if len(all_obs):
        norm.obs_mean, norm.obs_var, norm.obs_count = VecNormalize._update(
            norm.obs_mean, norm.obs_var, norm.obs_count, all_obs
        )
    all_returns = np.concatenate(returns)
    if len(all_returns):
        norm.ret_mean, norm.ret_var, norm.ret_count = VecNormalize._update(
            norm.ret_mean, norm.ret_var, norm.ret_count, all_returns
        )


class EpisodeRecord:
    """The episodes a share finished, as (share step, env index in the share, return, length)."""

    def __init__(self) -> None:
        self.rows: list[tuple[int, int, float, int]] = []

    def finished_episodes(self, info: dict[str, Any], step: int) -> None:
        self.rows.extend((step, i, ret, length) for i, ret, length in episode_ends(info))


@dataclass
class ShareResult:
    """What a share's rollout brings back: its columns of the rollout, where its envs now are, what updated its
    statistics, its finished episodes and its generator's state."""

    buf: Rollout
    obs: np.ndarray
    done: np.ndarray
    seen_obs: np.ndarray | None
    seen_returns: np.ndarray | None
    episodes: list[tuple[int, int, float, int]]
    rng: dict[str, Any]


class Share:
    """Envs `lo`..`hi - 1` of the run, stepped in this process by `policy`: the same envs, seeds and reset as
    one process stepping all of them would have."""

    def __init__(
        self,
        cfg: TrainConfig,
        bounds: tuple[int, int],
        policy: NumpyPolicy,
        normalize: bool,
        reset_seed: int,
        envs: gym.vector.VectorEnv | None = None,
    ):
        lo, hi = bounds
        self.cfg = dataclasses.replace(cfg, num_envs=hi - lo)
        self.envs = (
            envs
            if envs is not None
            else make_vec_env(cfg.env_config(), hi - lo, cfg.seed + lo, step_info=False)
        )
        self.policy, self.reset_seed = policy, reset_seed + lo
        shape = self.envs.single_observation_space.shape
        self.norm = RecordingNormalize(shape, hi - lo, cfg.gamma) if normalize else None
        self.buf = Rollout.allocate(cfg.num_steps, hi - lo, shape, self.envs.single_action_space.shape, False)
        self.state: EnvState | None = None
        self.hooks = LoopHooks()

    def collect(
        self, params: dict[str, Any] | None, norm_state: dict[str, Any] | None, clock: dict[str, float]
    ) -> ShareResult:
        """One rollout of this share with the policy `params` (None: the policy as it is) from the run's
        statistics `norm_state`."""
        if params is not None:
            self.policy.load_params(params)
        if self.norm is not None and norm_state is not None:
            self.norm.load_state_dict(norm_state)
        if self.state is None:  # the first rollout: reset (its observations count in the statistics)
            raw, _ = self.envs.reset(seed=self.reset_seed)
            obs = self.norm.obs(raw) if self.norm is not None else np.asarray(raw)
            self.state = EnvState(raw, obs, np.zeros(self.cfg.num_envs, np.float32))
        episodes = EpisodeRecord()
        collect_rollout(
            self.envs, self.policy, self.norm, self.hooks, self.buf, self.state, self.cfg, episodes, 0, clock
        )
        seen = self.norm.take_seen() if self.norm is not None else (None, None)
        return ShareResult(
            self.buf, self.state.obs, self.state.done, *seen, episodes.rows, self.policy.state_dict()
        )

    def close(self) -> None:
        self.envs.close()


def _serve(
    conn: Any,
    cfg: TrainConfig,
    bounds: tuple[int, int],
    policy: NumpyPolicy,
    normalize: bool,
    reset_seed: int,
) -> None:
    """A worker process: build its share, then collect a rollout per request until told to stop (None or the
    main process gone); an error goes back as its traceback."""
    # Ctrl-C and SIGTERM (to the process group) are the main process's to handle: it finishes the rollout,
    # saves, and stops us by closing the pipe
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    share = None
    try:
        share = Share(cfg, bounds, policy, normalize, reset_seed)
        conn.send(("ready", None))
        while (request := conn.recv()) is not None:
            params, norm_state = request
            conn.send(("ok", share.collect(params, norm_state, {"env": 0.0, "policy": 0.0})))
    except (EOFError, BrokenPipeError, KeyboardInterrupt):
        pass
    except Exception:  # noqa: BLE001  (any error: report it to the main process)
        try:
            conn.send(("error", traceback.format_exc()))
        except (BrokenPipeError, OSError):
            pass
    finally:
        if share is not None:
            share.close()


class ParallelRollouts:
    """`cfg.rollout_workers` shares of the run's envs: the first stepped in this process by `sampler` (the
    run's own) on `envs`, the others each in a worker process with a `NumpyPolicy` copy of it.
    `worker_states` restores the workers' generators (from a checkpoint's `sampler["workers"]`)."""

    def __init__(
        self,
        cfg: TrainConfig,
        envs: gym.vector.VectorEnv,
        sampler: NumpyMLPSampler,
        normalize: bool,
        reset_seed: int,
        worker_states: list[dict[str, Any]] | None = None,
    ):
        self.cfg, self.sampler = cfg, sampler
        self.bounds = share_bounds(cfg.num_envs, cfg.rollout_workers)
        self.local = Share(cfg, self.bounds[0], sampler, normalize, reset_seed, envs=envs)
        self.worker_states: list[dict[str, Any]] = []
        self.conns, self.processes = [], []
        context = mp.get_context("fork")  # the worker needs nothing re-imported; it never touches torch
        params = sampler.params()
        for i, bounds in enumerate(self.bounds[1:], start=1):
            policy = NumpyPolicy(params, [cfg.seed, i])
            if worker_states:
                policy.load_state_dict(worker_states[i - 1])
            parent, child = context.Pipe()
            process = context.Process(
                target=_serve, args=(child, cfg, bounds, policy, normalize, reset_seed), daemon=True
            )
            process.start()
            child.close()
            self.conns.append(parent)
            self.processes.append(process)
            self.worker_states.append(policy.state_dict())
        for i in range(len(self.conns)):
            self._receive(i)  # "ready": the worker's envs are built

    def _receive(self, i: int) -> Any:
        try:
            kind, payload = self.conns[i].recv()
        except EOFError:
            kind, payload = "error", "it exited"
        if kind == "error":
            raise RuntimeError(f"rollout worker {i + 1} failed:\n{payload}")
        return payload

    def collect(
        self,
        norm: VecNormalize | None,
        buf: Rollout,
        state: EnvState,
        log: RunLog,
        global_step: int,
        clock: dict[str, float],
    ) -> int:
        """One rollout of every share into `buf` (each share's columns), `state` set to where the envs now are,
        `norm` updated with everything the shares saw, episodes logged in step order; returns the new global
        step."""
        params = self.sampler.params()
        norm_state = norm.state_dict() if norm is not None else None
        for conn in self.conns:
            conn.send((params, norm_state))
        results = [self.local.collect(None, norm_state, clock)]
        tick = time.perf_counter()
        results += [self._receive(i) for i in range(len(self.conns))]
        clock["wait"] = clock.get("wait", 0.0) + time.perf_counter() - tick
        for result, (lo, hi) in zip(results, self.bounds, strict=True):
            for name in ("obs", "actions", "log_probs", "rewards", "dones", "values"):
                getattr(buf, name)[:, lo:hi] = getattr(result.buf, name)
        state.obs = np.concatenate([r.obs for r in results])
        state.done = np.concatenate([r.done for r in results])
        if norm is not None:
            merge_statistics(norm, [r.seen_obs for r in results], [r.seen_returns for r in results])
        episodes = []
        for result, (lo, hi) in zip(results, self.bounds, strict=True):
            for step, i, ret, length in result.episodes:  # share step counts hi - lo per env step
                episodes.append((global_step + step // (hi - lo) * self.cfg.num_envs, lo + i, ret, length))
        for step, _, ret, length in sorted(episodes):
            log.episode(step, ret, length)
            log.scalar("charts/episodic_return", ret, step)
        self.worker_states = [r.rng for r in results[1:]]
        return global_step + self.cfg.num_steps * self.cfg.num_envs

    def close(self) -> None:
        for conn in self.conns:
            try:
                conn.send(None)
            except (BrokenPipeError, OSError):
                pass
        stop_processes(self.processes, self.conns)
        self.local.close()
