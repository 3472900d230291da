"""Sweeps over algorithms x envs x seeds: local processes (every core by default) or a Ray cluster. Every run
folder records its config; a sweep whose configs differ from the folders' is refused before anything runs
(`--overwrite` starts them over). A finished run is skipped, so a stopped sweep resumes; a half-finished run
resumes from its checkpoint. Ctrl-C (or SIGTERM) stops every running job at its next safe point and launches
no new one. On a multi-node Ray cluster `--root` must be a file system every node shares (runs write there,
and resume reads there); each Ray task asks for `threads` CPUs."""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
import os
import signal
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

from align.progress import Progress
from align.stopping import GracefulStop, StopRequested
from align.user_errors import UserError
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


def _init_worker(threads: int) -> None:
    """Worker initializer: an idle worker ignores Ctrl-C (a running job handles it at its safe point), and torch
    uses the job's share of the cores (its default, every core in each of N workers, oversubscribes them: torch's
    spinning threads slowed the hierarchy's switch training ~15x with 2 workers on 2 cores)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    import torch

    torch.set_num_threads(threads)


def map_jobs(
    fn: Callable[..., Any],
    jobs: list[dict[str, Any]],
    workers: int | None = None,
    backend: str = "local",
    ray_address: str | None = None,
    cpus_per_job: int = 1,
    on_result: Callable[[int, Any], None] | None = None,
) -> list[Any]:
    """`fn(**job)` for every job, in order: in local processes (`workers`, default one per `cpus_per_job`
    cores) or as Ray tasks of `cpus_per_job` CPUs. `fn` must be importable (a module-level function).
    `on_result(i, result)` is called as each job finishes. Locally, Ctrl-C/SIGTERM stops the running jobs at
    their safe points, starts no new one and raises `StopRequested`."""
    if backend not in ("local", "ray"):
        raise UserError(f"unknown sweep backend {backend!r}: use 'local' or 'ray'")
    if not jobs:
        return []
    if backend == "ray":
        return _map_ray(fn, jobs, workers, ray_address, cpus_per_job, on_result)
    results: list[Any] = [None] * len(jobs)
    queue = iter(enumerate(jobs))
    running: dict[Future, int] = {}
    stopped = 0
    error: BaseException | None = None
    with GracefulStop() as stop:
        slots = workers or max(1, (os.cpu_count() or 1) // cpus_per_job)
        pool = ProcessPoolExecutor(max_workers=slots, initializer=_init_worker, initargs=(cpus_per_job,))
        try:

            def submit_next() -> None:
                if stop.requested or error is not None:
                    return
                nxt = next(queue, None)
                if nxt is not None:
                    running[pool.submit(_call, fn, nxt[1])] = nxt[0]

            for _ in range(slots):  # keep exactly `workers` jobs in flight, none queued
                submit_next()
            forwarded = False
            while running:
                done, _ = wait(running, timeout=0.5, return_when=FIRST_COMPLETED)
                if (stop.requested or error is not None) and not forwarded:
                    for child in multiprocessing.active_children():  # jobs stop at their safe points
                        os.kill(child.pid, signal.SIGTERM)
                    forwarded = True
                for future in done:
                    i = running.pop(future)
                    try:
                        results[i] = future.result()
                        if on_result is not None:
                            on_result(i, results[i])
                    except (StopRequested, BrokenProcessPool):
                        stopped += 1
                    except BaseException as e:  # the first failure stops the sweep; the others finish
                        error = error or e
                    submit_next()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
    if error is not None:
        raise error
    if stop.requested or stopped:
        finished = sum(r is not None for r in results)
        raise StopRequested(
            finished,
            len(jobs),
            message=f"stopped with {finished} of {len(jobs)} jobs finished (the others saved where they were); "
            "rerun the same command to resume",
        )
    return results


def _map_ray(fn, jobs, workers, ray_address, cpus_per_job, on_result) -> list[Any]:
    try:
        import ray
    except ImportError as exc:
        raise UserError("--backend ray needs Ray: pip install 'ares-align[ray]'") from exc
    if not ray.is_initialized():
        ray.init(address=ray_address, num_cpus=workers if ray_address is None else None)
    remote = ray.remote(num_cpus=cpus_per_job)(_call)
    refs = [remote.remote(fn, job) for job in jobs]
    results = ray.get(refs)
    if on_result is not None:
        for i, result in enumerate(results):
            on_result(i, result)
    return results


def _call(fn: Callable[..., Any], job: dict[str, Any]) -> Any:
    """`fn(**job)` in a worker process. A user error comes back as a plain `UserError` with its message: the
    result travels by pickling, and an exception whose constructor takes other arguments than its message
    (`ConfigChanged`, `UnsafeCheckpoint`) would fail to unpickle and break the whole pool."""
    from align.run_state import RunFolderError

    try:
        return fn(**job)
    except (UserError, RunFolderError) as e:
        raise UserError(str(e)) from None


def _finished(cfg: TrainConfig) -> bool:
    out = Path(cfg.out_dir)
    try:
        record = json.loads((out / "run_state.json").read_text())
    except (OSError, ValueError):
        return (out / "summary.json").is_file() and not (out / "run_state.json").exists()
    return bool((record.get("progress") or {}).get("finished")) and (out / "summary.json").is_file()


def check_folders(configs: list[TrainConfig]) -> None:
    """Refuse the sweep before anything runs when a run folder was started with another config."""
    from align.run_state import RunRecord
    from control.algos.registry import get
    from control.run import RECORD, RESUMABLE_CHANGES, recorded_config
    from control.train import resolve_config

    for cfg in configs:
        if cfg.overwrite or not (Path(cfg.out_dir) / RECORD).is_file():
            continue
        algo = get(cfg.algo)
        resolved = resolve_config(cfg, algo)
        extra = algo.hooks(resolved).config_extra() if algo.hooks is not None else {}
        RunRecord.open(
            cfg.out_dir,
            recorded_config(resolved, extra),
            name=RECORD,
            ignore=RESUMABLE_CHANGES,
            write=False,
        )


def check_rollout_workers(configs: list[TrainConfig]) -> None:
    """Refuse the sweep before anything runs when a run asks for rollout workers its algorithm cannot use."""
    from control.env_config import is_atari
    from control.train import _resolved, refuse_workers

    for cfg in configs:
        if cfg.rollout_workers > 1:
            _, resolved, hooks = _resolved(cfg, None)
            refuse_workers(resolved, hooks, image_obs=is_atari(cfg.env_id))


def run_sweep(
    configs: list[TrainConfig],
    workers: int | None = None,
    backend: str = "local",
    ray_address: str | None = None,
    quiet: bool = True,
) -> list[dict[str, Any]]:
    """Run every config not finished yet (each run quiet; one progress line over the runs unless `quiet`);
    returns the summaries of all of them."""
    if backend not in ("local", "ray"):
        raise UserError(f"unknown sweep backend {backend!r}: use 'local' or 'ray'")
    check_folders(configs)
    check_rollout_workers(configs)
    todo = [c for c in configs if c.overwrite or not _finished(c)]
    jobs = [{"cfg_dict": dataclasses.asdict(dataclasses.replace(c, quiet=True))} for c in todo]
    # a run's processes: its rollout workers step envs at once, its update uses `threads`
    cpus = max((max(c.threads, c.rollout_workers) for c in todo), default=1)
    with Progress(
        len(configs), "sweep", unit="run", initial=len(configs) - len(todo), quiet=quiet, interval_s=0
    ) as bar:
        map_jobs(_run, jobs, workers, backend, ray_address, cpus, on_result=lambda i, s: bar.update(1))
    return [json.loads((Path(c.out_dir) / "summary.json").read_text()) for c in configs]
