"""Sweeps over algorithms x envs x seeds: local processes (every core by default) or a Ray cluster. A run
whose summary.json exists is skipped, so a stopped sweep resumes; a half-finished run resumes from its
checkpoint. On a multi-node Ray cluster `--root` must be a file system every node shares (runs write there,
and resume reads there); each Ray task asks for `threads` CPUs."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from control.config import TrainConfig


def run_dir(root: Path, cfg: TrainConfig) -> Path:
    noise = (
        f"-noise{cfg.reward_noise or cfg.reward_flip_p}" if (cfg.reward_noise or cfg.reward_flip_p) else ""
    )
    return root / f"{cfg.algo}-{cfg.env_id.replace('/', '_')}{noise}-s{cfg.seed}"


def plan(
    base: TrainConfig, algos: list[str], envs: list[str], seeds: list[int], root: Path
) -> list[TrainConfig]:
    configs = []
    for env_id in envs:
        for algo in algos:
            for seed in seeds:
                cfg = dataclasses.replace(base, algo=algo, env_id=env_id, seed=seed)
                configs.append(dataclasses.replace(cfg, out_dir=str(run_dir(root, cfg))))
    return configs


def _run(cfg_dict: dict[str, Any]) -> dict[str, Any]:
    from control.train import train

    return train(TrainConfig(**cfg_dict))


def map_jobs(
    fn: Callable[..., Any],
    jobs: list[dict[str, Any]],
    workers: int | None = None,
    backend: str = "local",
    ray_address: str | None = None,
    cpus_per_job: int = 1,
) -> list[Any]:
    """`fn(**job)` for every job, in order: in local processes (`workers`, default every core) or as Ray tasks
    of `cpus_per_job` CPUs. `fn` must be importable (a module-level function)."""
    if backend not in ("local", "ray"):
        raise ValueError(f"unknown sweep backend {backend!r}: use 'local' or 'ray'")
    if not jobs:
        return []
    if backend == "ray":
        try:
            import ray
        except ImportError as exc:
            raise RuntimeError("--backend ray needs Ray: pip install 'ares-align[ray]'") from exc
        if not ray.is_initialized():
            ray.init(address=ray_address, num_cpus=workers if ray_address is None else None)
        remote = ray.remote(num_cpus=cpus_per_job)(_call)
        return ray.get([remote.remote(fn, job) for job in jobs])
    with ProcessPoolExecutor(max_workers=workers or os.cpu_count() or 1) as pool:
        return list(pool.map(_call, [fn] * len(jobs), jobs))


def _call(fn: Callable[..., Any], job: dict[str, Any]) -> Any:
    return fn(**job)


def run_sweep(
    configs: list[TrainConfig],
    workers: int | None = None,
    backend: str = "local",
    ray_address: str | None = None,
) -> list[dict[str, Any]]:
    """Run every config not finished yet; returns the summaries of all of them."""
    if backend not in ("local", "ray"):
        raise ValueError(f"unknown sweep backend {backend!r}: use 'local' or 'ray'")
    todo = [c for c in configs if not (Path(c.out_dir) / "summary.json").is_file()]
    jobs = [{"cfg_dict": dataclasses.asdict(c)} for c in todo]
    cpus = max((c.threads for c in todo), default=1)
    summaries = map_jobs(_run, jobs, workers, backend, ray_address, cpus)
    fresh = {c.out_dir: summary for c, summary in zip(todo, summaries, strict=True)}
    return [
        fresh.get(c.out_dir) or json.loads((Path(c.out_dir) / "summary.json").read_text()) for c in configs
    ]
