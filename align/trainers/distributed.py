"""The run's one `Accelerator` and the few collective steps the trainers share: splitting work by rank,
gathering results, micro-steps that end on an optimizer step, and DeepSpeed's batch settings.

One Accelerator per run (accelerate's state is a process-wide singleton: a second one with another
`mixed_precision` fails), its precision taken from the launch (`accelerate launch` config or flags) unless a
config section sets one. DDP is told to expect unused parameters: a VLM's vision tower gets no gradient
from a text-only batch.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

import torch
from accelerate import Accelerator, DistributedType
from accelerate.utils import DistributedDataParallelKwargs, gather_object


def make_accelerator(mixed_precision: str | None = None, **kwargs: Any) -> Accelerator:
    """The Accelerator of a run; `mixed_precision=None` keeps the launch's setting. fp16 without CUDA is
    refused (accelerate would run float32 and say nothing)."""
    handlers = [DistributedDataParallelKwargs(find_unused_parameters=True)]
    accelerator = Accelerator(mixed_precision=mixed_precision, kwargs_handlers=handlers, **kwargs)
    if accelerator.mixed_precision == "fp16" and accelerator.device.type != "cuda":
        from align.user_errors import UserError

        source = "the launch" if mixed_precision is None else "the config"
        raise UserError(
            f"mixed_precision 'fp16' (from {source}) needs a CUDA GPU; this run is on "
            f"{accelerator.device.type}: use bf16 or no"
        )
    return accelerator


def precision_summary(accelerator: Accelerator, module: torch.nn.Module) -> dict[str, Any]:
    """How a stage computes: the run's mixed precision, the engine, whether autocast is on, and the dtypes
    of its trainable and frozen weights (DeepSpeed's bf16 engine casts the module's weights to bf16 and
    keeps float32 master weights in its optimizer; autocast keeps float32 weights)."""
    trainable = {str(p.dtype).removeprefix("torch.") for p in module.parameters() if p.requires_grad}
    frozen = {str(p.dtype).removeprefix("torch.") for p in module.parameters() if not p.requires_grad}
    engine = {
        DistributedType.DEEPSPEED: f"deepspeed-zero{zero_stage(accelerator)}",
        DistributedType.NO: "single-process",
    }.get(accelerator.distributed_type, str(accelerator.distributed_type.value).lower())
    return {
        "mixed_precision": str(accelerator.mixed_precision),
        "engine": engine,
        "processes": accelerator.num_processes,
        "autocast": bool(accelerator.native_amp),
        "trainable_weights": sorted(trainable),
        "frozen_weights": sorted(frozen),
    }


def run_precision(sections: dict[str, str | None]) -> str | None:
    """The one mixed precision the config sections ask for (None: the launch decides), or an error naming
    the sections that disagree."""
    chosen = {name: value for name, value in sections.items() if value is not None}
    if len(set(chosen.values())) > 1:
        listed = ", ".join(f"{name}.mixed_precision={value!r}" for name, value in chosen.items())
        raise ValueError(f"one run has one mixed precision; the config asks for {listed}")
    return next(iter(chosen.values()), None)


def check_precision(accelerator: Accelerator, wanted: str | None, where: str) -> None:
    if wanted is not None and wanted != accelerator.mixed_precision:
        raise ValueError(
            f"{where}.mixed_precision={wanted!r}, but this run's accelerator uses "
            f"{accelerator.mixed_precision!r} (from the launch or another section); set it once for the run"
        )


def launch_state() -> Any:
    """accelerate's process state of the launch, without an Accelerator (none may exist yet). It reads
    ACCELERATE_USE_CPU as `Accelerator` does: a CPU launch of several processes created without it would
    leave every process believing it is alone, and every later Accelerator with it."""
    from accelerate import PartialState
    from accelerate.utils import parse_flag_from_env

    return PartialState(cpu=parse_flag_from_env("ACCELERATE_USE_CPU"))


def is_main_process() -> bool:
    """Whether this is the main process of the launch."""
    return launch_state().is_main_process


def wait_for_everyone() -> None:
    """A barrier over the launch's processes (nothing in a single process)."""
    launch_state().wait_for_everyone()


def is_deepspeed(accelerator: Accelerator) -> bool:
    return accelerator.distributed_type == DistributedType.DEEPSPEED


def zero_stage(accelerator: Accelerator) -> int:
    if not is_deepspeed(accelerator):
        return 0
    return int(accelerator.state.deepspeed_plugin.zero_stage)


def configure_deepspeed(accelerator: Accelerator, micro_batch: int, accumulation: int) -> None:
    """DeepSpeed needs the micro batch and accumulation up front; our trainers feed tensors, not a
    DataLoader, so they are set on the plugin's config (accelerate's documented route)."""
    if not is_deepspeed(accelerator):
        return
    config = accelerator.state.deepspeed_plugin.deepspeed_config
    config["train_micro_batch_size_per_gpu"] = micro_batch
    config["gradient_accumulation_steps"] = accumulation
    config["train_batch_size"] = micro_batch * accumulation * accelerator.num_processes
    accelerator.gradient_accumulation_steps = accumulation


def shard(items: list[Any], accelerator: Accelerator, pad: bool = True) -> list[Any]:
    """This rank's share: items rank, rank + world, ...; with `pad`, every rank gets the same count (the
    first items repeated) so that collective steps line up."""
    world, rank = accelerator.num_processes, accelerator.process_index
    if world == 1:
        return list(items)
    mine = list(items[rank::world])
    if pad:
        per_rank = -(-len(items) // world)
        mine += [items[k % len(items)] for k in range(per_rank - len(mine))] if items else []
    return mine


def gather_lists(accelerator: Accelerator, items: list[Any]) -> list[Any]:
    """Every rank's list, concatenated in rank order, on every rank."""
    if accelerator.num_processes == 1:
        return list(items)
    return [x for part in gather_object([items]) for x in part]


def over_ranks(accelerator: Accelerator, value: float, reduction: str = "max") -> float:
    """`value` reduced over ranks ("max", "min" or "sum")."""
    if accelerator.num_processes == 1:
        return value
    values = gather_lists(accelerator, [value])
    return {"max": max, "min": min, "sum": sum}[reduction](values)


def accumulation_windows(n_micro: int, accumulation: int) -> list[tuple[bool, float]]:
    """For each micro-step of an iteration: (whether it ends with an optimizer step, its loss weight).
    Windows hold `accumulation` micro-steps; the last one of the iteration is cut short and still steps,
    so no gradient carries into the next iteration (or into a checkpoint). The weight makes each window's
    gradient the mean over its own micro-steps (accelerate divides by `accumulation`)."""
    out = []
    for i in range(n_micro):
        start = i - i % accumulation
        size = min(accumulation, n_micro - start)
        out.append(((i + 1) % accumulation == 0 or i == n_micro - 1, accumulation / size))
    return out


@contextmanager
def micro_step(accelerator: Accelerator, model: torch.nn.Module, sync: bool) -> Iterator[None]:
    """`accelerator.accumulate` with the boundary chosen by the caller: gradients are all-reduced (DDP) or
    DeepSpeed steps only when `sync`."""
    accelerator.gradient_state._set_sync_gradients(sync)  # what accumulate() sets from its own counter
    with nullcontext() if sync else accelerator.no_sync(model):
        yield


@contextmanager
def full_parameters(model: torch.nn.Module) -> Iterator[None]:
    """Under ZeRO-3 every rank holds a shard of each weight: gather them (read-only) for saving. Elsewhere
    nothing to do. Every rank must enter (the gather is collective)."""
    sharded = [p for p in model.parameters() if hasattr(p, "ds_id")]
    if not sharded:
        yield
        return
    import deepspeed

    with deepspeed.zero.GatheredParameters(sharded, modifier_rank=None):
        yield


@contextmanager
def generation_weights(model: torch.nn.Module, accelerator: Accelerator | None = None) -> Iterator[None]:
    """Whole weights for `generate()`: under ZeRO-3 a prepared engine's are gathered with its hooks lifted
    (TRL's `unwrap_model_for_generation`), a model sharded at load (`zero3_init_flag`) is gathered; elsewhere
    nothing to do."""
    if accelerator is not None and zero_stage(accelerator) == 3 and hasattr(model, "optimizer"):
        from trl.models.utils import unwrap_model_for_generation

        with unwrap_model_for_generation(model, accelerator):
            yield
        return
    with full_parameters(model):
        yield
