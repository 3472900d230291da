"""Run bookkeeping shared by every control trainer: the run folder, logs, evaluation with frozen normalisation,
atomic checkpoints and the closing summary. Trainers keep only their rollout / advantages / update."""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import random
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from align import checkpoints
from control.config import TrainConfig
from control.envs import VecNormalize, make_env

EVAL_SEED_OFFSET = 10**6


def _keep_rows_up_to(path: Path, step: int) -> None:
    """Drop the CSV rows logged after `step` (their first column), atomically."""
    if not path.is_file():
        return
    rows = [r for r in csv.reader(path.open(newline="")) if r and float(r[0]) <= step]
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", newline="") as f:
        csv.writer(f).writerows(rows)
    os.replace(tmp, path)


class RunLog:
    """TensorBoard scalars plus CSVs of training-episode returns and evaluations.

    `start_step` is the step the run (re)starts from: rows a stopped run logged after its last checkpoint are
    dropped, so a resumed run's CSVs hold every episode once. `flush()` before each checkpoint keeps the CSVs
    at least as far as the checkpoint."""

    def __init__(self, out: Path, start_step: int = 0):
        from torch.utils.tensorboard import SummaryWriter

        out.mkdir(parents=True, exist_ok=True)
        for name in ("episodes.csv", "eval.csv"):
            _keep_rows_up_to(out / name, start_step)
        self.writer = SummaryWriter(str(out / "tb"))
        self.episodes = (out / "episodes.csv").open("a", newline="")
        self.evals = (out / "eval.csv").open("a", newline="")

    def scalar(self, name: str, value: float, step: int) -> None:
        self.writer.add_scalar(name, value, step)

    def episode(self, step: int, ret: float, length: int) -> None:
        csv.writer(self.episodes).writerow([step, ret, length])

    def finished_episodes(self, info: dict[str, Any], step: int) -> None:
        """Log the episodes a vector env reports as finished in this step's `info`."""
        finished = info.get("final_info", info)  # same-step autoreset reports finished episodes here
        if "episode" in finished:
            for i in np.flatnonzero(finished["_episode"]):
                ret, length = float(finished["episode"]["r"][i]), int(finished["episode"]["l"][i])
                self.episode(step, ret, length)
                self.scalar("charts/episodic_return", ret, step)

    def evaluation(self, step: int, returns: list[float]) -> None:
        csv.writer(self.evals).writerow([step, float(np.mean(returns)), float(np.std(returns)), len(returns)])
        self.evals.flush()
        self.scalar("eval/mean_return", float(np.mean(returns)), step)

    def flush(self) -> None:
        self.episodes.flush()
        self.evals.flush()
        self.writer.flush()

    def close(self) -> None:
        self.episodes.close()
        self.evals.close()
        self.writer.close()


def start_run(cfg: TrainConfig, extra: dict[str, Any] | None = None) -> Path:
    """Create the run folder, write `config.json` (plus `extra`), seed every generator, set torch threads."""
    torch.set_num_threads(cfg.threads)
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps({**dataclasses.asdict(cfg), **(extra or {})}, indent=1))
    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    return out


def crossed(step: int, every: int, batch: int) -> bool:
    """Whether the last `batch` steps (ending at `step`) crossed a multiple of `every`; never when every is 0."""
    return bool(every) and step // every != (step - batch) // every


@torch.no_grad()
def evaluate(
    agent: torch.nn.Module,
    cfg: TrainConfig,
    norm: VecNormalize | None,
    episodes: int,
    seed: int,
    max_steps: int = 27_000,
) -> list[float]:
    """Returns on the noiseless env, observations normalised with the current (unchanged) statistics; greedy or
    sampled actions as `cfg.evaluates_greedily()` says. Sampling draws from the torch RNG seeded with `seed` in a
    fork, so the training's RNG stream is left as it was. `agent` needs `distribution_terms(obs)` -> (sample, ..., greedy action)."""
    env = make_env(cfg.env_config(), seed, evaluation=True)()
    device = next(agent.parameters()).device
    greedy_actions = cfg.evaluates_greedily()
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        returns = _episodes(agent, env, norm, episodes, seed, max_steps, device, greedy_actions)
    env.close()
    return returns


def _episodes(
    agent: torch.nn.Module,
    env: gym.Env,
    norm: VecNormalize | None,
    episodes: int,
    seed: int,
    max_steps: int,
    device: torch.device,
    greedy_actions: bool,
) -> list[float]:
    returns = []
    for episode in range(episodes):
        obs, _ = env.reset(seed=seed + episode)
        total, done, steps = 0.0, False, 0
        while not done and steps < max_steps:
            x = np.asarray(obs)[None]
            x = norm.apply_obs(x) if norm is not None else x
            x = torch.as_tensor(x, dtype=None if x.dtype == np.uint8 else torch.float32, device=device)
            sample, *_, greedy = agent.distribution_terms(x)
            action = (greedy if greedy_actions else sample)[0].cpu().numpy()
            obs, reward, terminated, truncated, _ = env.step(action if action.ndim else int(action))
            total, done, steps = total + float(reward), terminated or truncated, steps + 1
        returns.append(total)
    return returns


def evaluate_and_log(
    log: RunLog, agent: torch.nn.Module, cfg: TrainConfig, norm: VecNormalize | None, step: int
) -> list[float]:
    """Evaluate `cfg.eval_episodes` episodes (normalisation frozen meanwhile) and log them."""
    if not cfg.eval_episodes:
        return []
    training = norm.training if norm is not None else False
    if norm is not None:
        norm.training = False
    returns = evaluate(agent, cfg, norm, cfg.eval_episodes, cfg.seed + EVAL_SEED_OFFSET)
    if norm is not None:
        norm.training = training
    log.evaluation(step, returns)
    return returns


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write atomically (a stopped run never leaves a half-written checkpoint) in a form that loads without
    pickle."""
    checkpoints.save_checkpoint(path, state)


def export_policy(out: Path, agent: dict[str, torch.Tensor], norm: dict[str, Any] | None, step: int) -> None:
    """The policy's weights and observation statistics as `model.safetensors`, the file to share."""
    weights = {f"agent.{k}": v for k, v in agent.items()}
    for k, v in (norm or {}).items():
        weights[f"obs_norm.{k}"] = torch.as_tensor(np.asarray(v, dtype=np.float64))
    checkpoints.save_weights(out / "model.safetensors", weights, {"global_step": step})


def load_checkpoint(path: Path, map_location: Any = "cpu") -> dict[str, Any]:
    """A checkpoint written by `save_checkpoint`; one that needs pickle is refused unless the user opted in."""
    return checkpoints.load_checkpoint(path, map_location)


def rng_state() -> dict[str, Any]:
    return {"torch_rng": torch.get_rng_state(), "numpy_rng": np.random.get_state()}


def restore_rng(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch_rng"])
    np.random.set_state(state["numpy_rng"])


def finish_run(
    out: Path,
    cfg: TrainConfig,
    final: list[float],
    global_step: int,
    steps_done: int,
    elapsed: float,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write and return `summary.json`: steps, steps/s of this session, final evaluation (+ `extra`)."""
    summary = {
        "algo": cfg.algo,
        "env_id": cfg.env_id,
        "seed": cfg.seed,
        "global_step": global_step,
        "steps_per_s": steps_done / max(elapsed, 1e-9),
        "eval_mean_return": float(np.mean(final)) if final else None,
        **(extra or {}),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary
