"""Where the control networks run: device choice and the bfloat16 autocast of the image trunk."""

from __future__ import annotations

import torch


def resolve_device(name: str, image_obs: bool) -> torch.device:
    """`name` is cpu, cuda, cuda:N or auto. `auto` puts image (Nature CNN) policies on a GPU when one is there
    and keeps MLP policies on the CPU, where per-call overhead, not arithmetic, bounds them."""
    if name == "auto":
        return torch.device("cuda" if image_obs and torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise ValueError(f"--device {name!r} is not a torch device (cpu, cuda, cuda:N, auto)") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {name}: torch sees no CUDA device here; use --device cpu or auto")
    return device


def bf16_autocast(device: torch.device, enabled: bool) -> torch.autocast:
    """bfloat16 autocast on `device` (convolutions and matmuls in bf16, reductions in float32)."""
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=enabled)
