"""What a training loop needs from the command that runs it: whether a stop was requested (agreed over every
rank, so no rank waits in a collective the others left) and how to show progress.

A loop calls `stop_requested(accelerator)` at its safe points (after a PPO/DLPO iteration, an SFT optimizer
step), saves what it has there, and raises `StopRequested(step, total)`; it shows one `progress(...)` bar per
long stage, on the main process only. Without hooks a loop shows progress and never stops early.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from align.progress import Progress
from align.stopping import GracefulStop, StopRequested


@dataclass
class TrainHooks:
    """The stop request of the command (`GracefulStop`, or None: never stop early) and its `--quiet`.

    `rename` shows a metric under another name in the bars (DLPO TTS: its reward is the MOS)."""

    stop: GracefulStop | None = None
    quiet: bool = False
    rename: Mapping[str, str] = field(default_factory=dict)

    def progress(
        self, total: int, desc: str, *, unit: str = "step", initial: int = 0, main: bool = True
    ) -> Progress:
        """A progress bar for one stage; silent on every process but the main one, and under `--quiet`."""
        return Progress(total, desc, unit=unit, initial=initial, quiet=self.quiet or not main)

    def show(self, bar: Progress, n: int = 1, **metrics: Any) -> None:
        """Advance `bar` by `n` with `metrics` (None and NaN values left out), under their display names."""
        shown = {
            self.rename.get(k, k): v
            for k, v in metrics.items()
            if v is not None and not (isinstance(v, float) and v != v)
        }
        bar.update(n, **shown)

    def stop_requested(self, accelerator: Any = None) -> bool:
        """Whether any rank was asked to stop. Every rank must call this at the same point: with several
        processes the flag is reduced over them (through `accelerator`, or torch.distributed when the
        process group belongs to a library trainer)."""
        local = self.stop is not None and self.stop.requested
        if accelerator is not None:
            if accelerator.num_processes == 1:
                return local
            import torch

            flag = torch.tensor([1.0 if local else 0.0], device=accelerator.device)
            return bool(accelerator.reduce(flag, reduction="sum").item() > 0)
        return _any_rank(local)


def run_iterations(
    trainer: Any,
    iterations: int,
    hooks: TrainHooks | None,
    label: str,
    state_file: str,
    shown: Callable[[dict[str, float]], dict[str, Any]],
    before_stop: Callable[[], None] | None = None,
) -> list[dict[str, float]]:
    """The resumable iteration loop of the PPO and DLPO trainers: resume from `trainer.output_dir/state_file`
    when it is there, run `trainer.step()` until `iterations` in total with one progress bar (`shown(metrics)`),
    and on a stop request write a checkpoint (unless this iteration's periodic one was written), call
    `before_stop` and raise `StopRequested`. Returns each iteration's metrics."""
    hooks = hooks or TrainHooks()
    main = trainer.accelerator.is_main_process
    if (trainer.output_dir / state_file).is_file():
        trainer.load_checkpoint()
        if main and 0 < trainer.iteration < iterations:
            print(f"[{label}] resuming from iteration {trainer.iteration} of {iterations}", flush=True)
    history = []
    with hooks.progress(iterations, label, unit="iteration", initial=trainer.iteration, main=main) as bar:
        while trainer.iteration < iterations:
            if hooks.stop_requested(trainer.accelerator):
                every = trainer.config.save_every
                if trainer.iteration and not (every and trainer.iteration % every == 0):
                    trainer.save_checkpoint()
                if before_stop is not None:
                    before_stop()
                raise StopRequested(trainer.iteration, iterations, f"{label} iteration")
            metrics = trainer.step()
            history.append(metrics)
            hooks.show(bar, **shown(metrics))
    return history


def _any_rank(flag: bool) -> bool:
    try:
        import torch.distributed as dist
    except ImportError:  # pragma: no cover - torch is a dependency
        return flag
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return flag
    import torch

    device = torch.device("cpu")
    if dist.get_backend() == "nccl":
        device = torch.device("cuda", torch.cuda.current_device())
    value = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(value)
    return bool(value.item() > 0)
