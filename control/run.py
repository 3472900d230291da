"""Run bookkeeping shared by every control trainer: the run folder, logs, evaluation with frozen normalisation,
atomic checkpoints and the closing summary. Trainers keep only their rollout / advantages / update."""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import random
import time
from collections import deque
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

import align.checkpoints as checkpoints
from align.run_state import RunRecord, config_differences, write_json_atomic
from align.user_errors import UserError
from control.config import NOT_RESULT_CHANGING, TrainConfig
from control.envs import VecNormalize, make_env

EVAL_SEED_OFFSET = 10**6


EPISODES_HEADER = ("step", "return", "length")
EVAL_HEADER = ("step", "mean_return", "std_return", "episodes")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def read_rows(path: Path) -> list[list[str]]:
    """The data rows of one of our CSVs (its header, when it has one, left out)."""
    if not path.is_file():
        return []
    with path.open(newline="") as f:
        return [r for r in csv.reader(f) if r and _is_number(r[0])]


def keep_rows_up_to(path: Path, step: float, header: tuple[str, ...] | None = None) -> None:
    """Drop the CSV rows logged after `step` (their first column), atomically; the header row stays (and is
    added when `header` is given and the file lacks one)."""
    if not path.is_file():
        return
    with path.open(newline="") as f:
        rows = [r for r in csv.reader(f) if r]
    head = [rows[0]] if rows and not _is_number(rows[0][0]) else ([list(header)] if header else [])
    kept = head + [r for r in rows if _is_number(r[0]) and float(r[0]) <= step]
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", newline="") as f:
        csv.writer(f).writerows(kept)
    os.replace(tmp, path)


def _open_csv(path: Path, header: tuple[str, ...]):
    """Append to `path`, writing `header` first when the file is new or empty."""
    fresh = not path.is_file() or path.stat().st_size == 0
    f = path.open("a", newline="")
    if fresh:
        csv.writer(f).writerow(header)
    return f


def episode_ends(info: dict[str, Any]) -> list[tuple[int, float, int]]:
    """(env index, return, length) of each episode a vector env's step `info` reports as finished."""
    finished = info.get("final_info", info)  # same-step autoreset reports finished episodes here
    if "episode" not in finished:
        return []
    episode = finished["episode"]
    return [
        (int(i), float(episode["r"][i]), int(episode["l"][i])) for i in np.flatnonzero(finished["_episode"])
    ]


class RunLog:
    """TensorBoard scalars plus CSVs of training-episode returns and evaluations.

    `start_step` is the step the run (re)starts from: rows a stopped run logged after its last checkpoint are
    dropped, so a resumed run's CSVs hold every episode once. `flush()` before each checkpoint keeps the CSVs
    at least as far as the checkpoint. Scalars reach TensorBoard in one batch per `write_scalars()` (the loop
    calls it once per rollout): its writer thread then wakes once per rollout instead of once per episode
    (a third of the CPU per scalar)."""

    def __init__(
        self,
        out: Path,
        start_step: int = 0,
        track: bool = False,
        wandb_project: str = "ares-control",
        config: dict[str, Any] | None = None,
    ):
        from torch.utils.tensorboard import SummaryWriter

        self.wandb = start_wandb(out, wandb_project, config or {}) if track else None
        out.mkdir(parents=True, exist_ok=True)
        keep_rows_up_to(out / "episodes.csv", start_step, EPISODES_HEADER)
        keep_rows_up_to(out / "eval.csv", start_step, EVAL_HEADER)
        self.writer = SummaryWriter(str(out / "tb"))
        self.episodes = _open_csv(out / "episodes.csv", EPISODES_HEADER)
        self.evals = _open_csv(out / "eval.csv", EVAL_HEADER)
        self.recent: deque[float] = deque(maxlen=20)  # returns of the last episodes, for the progress line
        self.last_eval: tuple[int, list[float]] | None = None
        self.pending: list[tuple[str, float, int]] = []  # scalars not yet handed to TensorBoard

    def scalar(self, name: str, value: float, step: int) -> None:
        self.pending.append((name, value, step))

    def write_scalars(self) -> None:
        """Hand the scalars logged since the last call to TensorBoard."""
        for name, value, step in self.pending:
            self.writer.add_scalar(name, value, step)
        self.pending.clear()

    def episode(self, step: int, ret: float, length: int) -> None:
        csv.writer(self.episodes).writerow([step, ret, length])
        self.recent.append(ret)

    def recent_return(self) -> float | None:
        """Mean return of the last (up to 20) training episodes, None before the first one ends."""
        return float(np.mean(self.recent)) if self.recent else None

    def finished_episodes(self, info: dict[str, Any], step: int) -> None:
        """Log the episodes a vector env reports as finished in this step's `info`."""
        for _, ret, length in episode_ends(info):
            self.episode(step, ret, length)
            self.scalar("charts/episodic_return", ret, step)

    def evaluation(self, step: int, returns: list[float]) -> None:
        csv.writer(self.evals).writerow([step, float(np.mean(returns)), float(np.std(returns)), len(returns)])
        self.last_eval = (step, list(returns))
        self.evals.flush()
        self.scalar("eval/mean_return", float(np.mean(returns)), step)

    def flush(self) -> None:
        self.write_scalars()
        self.episodes.flush()
        self.evals.flush()
        self.writer.flush()

    def close(self) -> None:
        self.write_scalars()
        self.episodes.close()
        self.evals.close()
        self.writer.close()
        if self.wandb is not None:
            self.wandb.finish()
            self.wandb = None


def start_wandb(out: Path, project: str, config: dict[str, Any]) -> Any:
    """A Weights & Biases run mirroring the TensorBoard scalars (`sync_tensorboard`), resumed with the run
    folder (its id is derived from the folder). `WANDB_MODE=offline` works without a network."""
    try:
        import wandb
    except ImportError:
        raise UserError("--track needs Weights & Biases: pip install wandb") from None
    run_id = "".join(c if c.isalnum() else "-" for c in out.resolve().name)[-64:]
    return wandb.init(
        project=project,
        name=out.name,
        id=run_id,
        resume="allow",
        dir=str(out),
        config=config,
        sync_tensorboard=True,
        settings=wandb.Settings(silent=True),
    )


RUNS_ROOT = Path("runs") / "control"
# a run may be resumed with other values of these; `total_steps` extends (or shortens) it, as SB3's `learn`
# does when called again (with --anneal-lr the schedule follows the new total)
RESUMABLE_CHANGES = (*NOT_RESULT_CHANGING, "total_steps")
RECORD = "run_state.json"


def run_name(cfg: TrainConfig, stamp: str) -> str:
    """`<env>__<algo>__s<seed>__<stamp>`, CleanRL's pattern (env ids' slashes become underscores)."""
    return f"{cfg.env_id.replace('/', '_')}__{cfg.algo}__s{cfg.seed}__{stamp}"


# Fields added after run folders were recorded without them: recorded only when not at this default, so those
# folders still resume.
RECORDED_WHEN_SET = {"rollout_workers": 1}


def recorded_config(cfg: TrainConfig, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """What the run folder records at its first start: the whole config (the fields that do not change
    results are left out of the comparison, not out of the record)."""
    config = dataclasses.asdict(cfg)
    for name, default in RECORDED_WHEN_SET.items():
        if config[name] == default:
            del config[name]
    return {**config, **(extra or {})}


def _unfinished_twin(cfg: TrainConfig, config: dict[str, Any]) -> Path | None:
    """The newest default run folder of the same env, algorithm and seed, unfinished, with the same config."""
    for folder in sorted(RUNS_ROOT.glob(run_name(cfg, "*")), reverse=True):
        try:
            record = json.loads((folder / RECORD).read_text())
        except (OSError, ValueError):
            continue
        progress = record.get("progress") or {}
        same = not config_differences(record.get("config") or {}, config, RESUMABLE_CHANGES)
        if same and not progress.get("finished"):
            return folder
    return None


def run_folder(cfg: TrainConfig, config: dict[str, Any]) -> Path:
    """`cfg.out_dir`, or by default a new folder under runs/control (an unfinished run of the same settings
    is resumed instead, so rerunning a stopped command continues it)."""
    if cfg.out_dir:
        return Path(cfg.out_dir)
    if not cfg.overwrite and (twin := _unfinished_twin(cfg, config)) is not None:
        return twin
    stamp = time.strftime("%Y%m%d-%H%M%S")
    folder, n = RUNS_ROOT / run_name(cfg, stamp), 1
    while folder.exists():
        n += 1
        folder = RUNS_ROOT / run_name(cfg, f"{stamp}-{n}")
    return folder


def same_files_as_recorded(config: dict[str, Any], record: Path) -> dict[str, Any]:
    """`config` with each `env_kwargs` string that names the same existing file as the value `record` holds,
    spelt otherwise (relative against absolute, through a link), replaced by the recorded spelling: the same
    file is the same setting, so a root named another way resumes its runs instead of retraining them."""
    kwargs = config.get("env_kwargs")
    if not isinstance(kwargs, dict) or not record.is_file():
        return config
    try:
        recorded = json.loads(record.read_text()).get("config", {}).get("env_kwargs") or {}
    except (OSError, ValueError, AttributeError):
        return config
    same = {
        k: recorded[k]
        for k, v in kwargs.items()
        if isinstance(v, str)
        and isinstance(recorded.get(k), str)
        and v != recorded[k]
        and _same_file(v, recorded[k])
    }
    return {**config, "env_kwargs": {**kwargs, **same}} if same else config


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):
        return False


def open_run(
    cfg: TrainConfig, extra: dict[str, Any] | None = None, write: bool = True
) -> tuple[Path, RunRecord]:
    """The run folder and its record: a later start with a different config is refused (`ConfigChanged`,
    naming each field and --overwrite); `--overwrite` empties the folder first. `write=False` only checks
    (nothing is written or emptied)."""
    config = recorded_config(cfg, extra)
    out = run_folder(cfg, config)
    config["out_dir"] = str(out)
    config = same_files_as_recorded(config, out / RECORD)
    record = RunRecord.open(
        out,
        config,
        name=RECORD,
        ignore=RESUMABLE_CHANGES,
        start_over="--overwrite",
        overwrite=cfg.overwrite and write,
        write=write,
    )
    if record.config.get("total_steps") != cfg.total_steps:  # a longer (or shorter) run of the same config
        record.config["total_steps"] = cfg.total_steps
        record.save()
    return out, record


def start_run(cfg: TrainConfig, out: Path, extra: dict[str, Any] | None = None) -> None:
    """Write `config.json` (plus `extra`), seed every generator, set torch threads."""
    torch.set_num_threads(cfg.threads)
    out.mkdir(parents=True, exist_ok=True)
    config = {**recorded_config(cfg, extra), "out_dir": str(out)}
    write_json_atomic(out / "config.json", config)
    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)


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
    write_json_atomic(out / "summary.json", summary)
    return summary
