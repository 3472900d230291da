"""Where the control networks run: device choice, whether bfloat16 is native there, and the bfloat16 autocast of
the image trunk."""

from __future__ import annotations

import os
from pathlib import Path

import torch

# x86 CPU features with bfloat16 arithmetic that oneDNN uses for convolutions and matmuls
NATIVE_BF16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")


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


def cpu_flags_from_cpuinfo(text: str) -> tuple[str, set[str]]:
    """(model name, feature flags) of the first CPU in a /proc/cpuinfo text."""
    model, flags = "unknown CPU", set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name" and model == "unknown CPU":
            model = value.strip()
        elif key.strip() == "flags":
            flags = set(value.split())
            break
    return model, flags


def cpu_bf16_features() -> tuple[str, set[str]]:
    """(CPU name, the native-bf16 features it has), from torch's CPU capability probe, else /proc/cpuinfo."""
    probe = getattr(torch.cpu, "get_capabilities", None)
    if probe is not None:
        caps = probe()
        return str(caps.get("cpu_name", "unknown CPU")), {f for f in NATIVE_BF16_CPU_FLAGS if caps.get(f)}
    try:
        model, flags = cpu_flags_from_cpuinfo(Path("/proc/cpuinfo").read_text())
    except OSError:
        return "unknown CPU", set()
    return model, flags & set(NATIVE_BF16_CPU_FLAGS)


def native_bf16(device: torch.device) -> tuple[bool, str]:
    """Whether bfloat16 convolutions/matmuls run natively on `device` (x86 CPUs with AMX or AVX512-BF16; CUDA
    GPUs with bf16 arithmetic, Ampere and later), and a sentence saying why, for messages."""
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        if torch.cuda.is_bf16_supported(including_emulation=False):
            return True, f"{name} has native bfloat16"
        return False, f"{name} has no native bfloat16 (it is emulated there)"
    if device.type == "cpu":
        name, features = cpu_bf16_features()
        isa_cap = os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA")
        if features and isa_cap and not any(k in isa_cap.upper() for k in ("BF16", "AMX", "AVX10", "ALL")):
            return False, (
                f"ONEDNN_MAX_CPU_ISA={isa_cap} keeps oneDNN from the CPU's {' and '.join(sorted(features))}, "
                "so bfloat16 convolutions are emulated and run several times slower than float32"
            )
        if features:
            return True, f"the CPU ({name}) has {' and '.join(sorted(features))}"
        return False, (
            f"the CPU ({name}) has neither AMX nor AVX512-BF16, so bfloat16 convolutions are emulated "
            "and run several times slower than float32 (8.5x on Pong measured)"
        )
    return False, f"no bfloat16 check for {device.type} devices"


def require_native_bf16(device: torch.device) -> None:
    """Refuse `--bf16` where it would slow training down instead of speeding it up."""
    ok, why = native_bf16(device)
    if not ok:
        raise ValueError(f"--bf16 refused: {why}; train without --bf16 (float32 is faster here)")


def bf16_autocast(device: torch.device, enabled: bool) -> torch.autocast:
    """bfloat16 autocast on `device` (convolutions and matmuls in bf16, reductions in float32)."""
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=enabled)
