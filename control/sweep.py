"""Sweeps over algorithms x envs x seeds: local processes (every core by default) or a Ray cluster. A run
whose summary.json exists is skipped, so a stopped sweep resumes; a half-finished run resumes from its
checkpoint."""

from __future__ import annotations

import dataclasses
import json
import os
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


def run_sweep(
    configs: list[TrainConfig],
    workers: int | None = None,
    backend: str = "local",
    ray_address: str | None = None,
) -> list[dict[str, Any]]:
    """Run every config not finished yet; returns the summaries of all of them."""
    todo = [c for c in configs if not (Path(c.out_dir) / "summary.json").is_file()]
    if backend == "ray":
        import ray

        ray.init(address=ray_address, ignore_reinit_error=True)
        remote = ray.remote(_run)
        ray.get([remote.remote(dataclasses.asdict(c)) for c in todo])
    elif todo:
        with ProcessPoolExecutor(max_workers=workers or os.cpu_count() or 1) as pool:
            list(pool.map(_run, [dataclasses.asdict(c) for c in todo]))
    return [json.loads((Path(c.out_dir) / "summary.json").read_text()) for c in configs]
