"""Envs stepped in parallel processes with little per-step overhead, for `--async-envs` runs whose loop reads
nothing of each step's info.

gymnasium's `AsyncVectorEnv` pickles every step's command, reward, flags and info through a pipe per env and
turns the infos into arrays; for a MuJoCo step of about a tenth of a millisecond that costs more than the step
(measured on Hopper, CPU time: each env process spent 2.6 times the env's own step time, and the main process
gained nothing from handing the stepping over), so two envs on two cores trained slower than one. `SubprocessEnvs` keeps observations, rewards, flags, final
observations and episode statistics in shared memory, wakes each env process with a one-byte message, and steps
env 0 in the main process meanwhile (which would otherwise wait idle). It reports what our loop reads: same-step
autoreset, `final_obs`, and `final_info` holding the episode statistics (`episode` r, l, t); an env's other info
keys are not passed (`make_vec_env` uses `AsyncVectorEnv` when something reads them).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import traceback
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector.utils import CloudpickleWrapper

STEP, RESET, CLOSE, DONE, ERROR = b"s", b"r", b"c", b"k", b"e"
MESSAGE = 65536  # the most one read takes: a command, a reply, or an error's traceback


class SharedSlots:
    """The per-env arrays both sides read and write, rows indexed by env, in shared memory."""

    def __init__(self, num_envs: int, obs_space: gym.Space, action_space: gym.Space):
        self.buffers = {
            "obs": _shared((num_envs, *obs_space.shape), obs_space.dtype),
            "final_obs": _shared((num_envs, *obs_space.shape), obs_space.dtype),
            "actions": _shared((num_envs, *action_space.shape), action_space.dtype),
            "rewards": _shared((num_envs,), np.float64),
            "terminated": _shared((num_envs,), np.bool_),
            "truncated": _shared((num_envs,), np.bool_),
            "ended": _shared((num_envs,), np.bool_),
            "episode": _shared((num_envs, 3), np.float64),  # return, length, time of the episode that ended
        }
        self.attach()

    def attach(self) -> None:
        """(Re)build the numpy views (after the slots reach a process by pickling)."""
        for name, (raw, shape, dtype) in self.buffers.items():
            setattr(self, name, np.frombuffer(raw, dtype).reshape(shape))

    def __getstate__(self) -> dict[str, Any]:
        return {"buffers": self.buffers}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.buffers = state["buffers"]
        self.attach()


def _shared(shape: tuple[int, ...], dtype: Any) -> tuple[Any, tuple[int, ...], np.dtype]:
    dtype = np.dtype(dtype)
    return mp.RawArray("b", max(1, int(np.prod(shape)) * dtype.itemsize)), shape, dtype


def _step_into(env: gym.Env, slots: SharedSlots, i: int) -> None:
    """Step env `i` with its action slot; write the outcome (and, at an episode's end, the final observation
    and statistics, then the reset observation) into its slots."""
    obs, reward, terminated, truncated, info = env.step(slots.actions[i].copy())
    slots.rewards[i], slots.terminated[i], slots.truncated[i] = reward, terminated, truncated
    slots.ended[i] = terminated or truncated
    if slots.ended[i]:
        slots.final_obs[i] = obs
        episode = info.get("episode")
        slots.episode[i] = (episode["r"], episode["l"], episode["t"]) if episode else np.nan
        obs, _ = env.reset()
    slots.obs[i] = obs


def _worker(index: int, env_fn: CloudpickleWrapper, conn: Any, slots: SharedSlots) -> None:
    """An env process: step or reset on request until told to close; errors go back as text. Messages are
    raw single writes and reads on the pipe (one system call each way)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the main process's to handle (it closes us)
    env, fd = None, conn.fileno()
    try:
        env = env_fn()
        while True:
            command = os.read(fd, MESSAGE)
            if command == STEP:
                _step_into(env, slots, index)
            elif command.startswith(RESET):
                seed = int(command[1:]) if len(command) > 1 else None
                slots.obs[index] = env.reset(seed=seed)[0]
            else:  # CLOSE, or end of file: the main process went away
                break
            os.write(fd, DONE)
    except BrokenPipeError:
        pass
    except Exception:  # noqa: BLE001  (any env error: report it to the main process)
        os.write(fd, ERROR + traceback.format_exc()[-MESSAGE // 2 :].encode())
    finally:
        if env is not None:
            env.close()


def stop_processes(processes: list[Any], conns: list[Any], timeout: float = 5.0) -> None:
    """Wait for child processes told to stop (each gets `timeout` seconds, then is terminated), then close
    their pipes."""
    for process in processes:
        process.join(timeout=timeout)
        if process.is_alive():
            process.terminate()
    for conn in conns:
        conn.close()


class SubprocessEnvs(gym.vector.VectorEnv):
    """`len(env_fns)` envs with same-step autoreset: env 0 in this process, the others in one process each."""

    metadata = {"autoreset_mode": gym.vector.AutoresetMode.SAME_STEP}

    def __init__(self, env_fns: list[Callable[[], gym.Env]]):
        self.env = env_fns[0]()
        self.num_envs = len(env_fns)
        self.single_observation_space = self.env.observation_space
        self.single_action_space = self.env.action_space
        self.observation_space = gym.vector.utils.batch_space(self.single_observation_space, self.num_envs)
        self.action_space = gym.vector.utils.batch_space(self.single_action_space, self.num_envs)
        self.slots = SharedSlots(self.num_envs, self.single_observation_space, self.single_action_space)
        context = mp.get_context()
        self.conns, self.fds, self.processes = [], [], []
        for i, fn in enumerate(env_fns[1:], start=1):
            parent, child = context.Pipe()  # a socket pair: each side reads and writes
            process = context.Process(
                target=_worker, args=(i, CloudpickleWrapper(fn), child, self.slots), daemon=True
            )
            process.start()
            child.close()
            self.conns.append(parent)
            self.fds.append(parent.fileno())
            self.processes.append(process)

    def _send(self, commands: list[bytes]) -> None:
        for fd, command in zip(self.fds, commands, strict=True):
            os.write(fd, command)

    def _wait(self) -> None:
        for i, fd in enumerate(self.fds, start=1):
            reply = os.read(fd, MESSAGE)
            if reply != DONE:
                why = reply[1:].decode(errors="replace") or "it exited"
                raise RuntimeError(f"env {i} (in a subprocess) failed:\n{why}")

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        if options is not None:
            raise ValueError("SubprocessEnvs.reset takes no options")
        self._send(
            [RESET + (b"" if seed is None else str(seed + i).encode()) for i in range(1, self.num_envs)]
        )
        self.slots.obs[0] = self.env.reset(seed=seed)[0]
        self._wait()
        return self.slots.obs.copy(), {}

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict]:
        slots = self.slots
        slots.actions[:] = actions
        self._send([STEP] * len(self.fds))
        _step_into(self.env, slots, 0)
        self._wait()
        return (
            slots.obs.copy(),
            slots.rewards.copy(),
            slots.terminated.copy(),
            slots.truncated.copy(),
            self._episode_ends() if slots.ended.any() else {},
        )

    def _episode_ends(self) -> dict[str, Any]:
        """The vector-form info of the envs whose episodes ended this step (as gymnasium's vector envs give)."""
        infos: dict[str, Any] = {}
        for i in np.flatnonzero(self.slots.ended):
            r, length, t = self.slots.episode[i]
            final = {"episode": {"r": r, "l": int(length), "t": t}} if not np.isnan(r) else {}
            infos = self._add_info(
                infos, {"final_obs": self.slots.final_obs[i].copy(), "final_info": final}, i
            )
        return infos

    def close_extras(self, **kwargs: Any) -> None:
        for fd in self.fds:
            try:
                os.write(fd, CLOSE)
            except OSError:  # a process that already exited
                pass
        stop_processes(self.processes, self.conns)
        self.env.close()
