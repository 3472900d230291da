"""Load a policy (causal LM or image-text-to-text VLM) by hub id or local path, with optional LoRA and
4/8-bit quantization. LLaVA and Qwen2-VL families load through the `Auto*` classes."""

from __future__ import annotations

import copy
import functools
import importlib.util
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoModelForImageTextToText,
    AutoTokenizer,
    PreTrainedModel,
)

from align.models.processors import load_processor
from align.user_errors import UserError

REFERENCE_ADAPTER = "stage_start_reference"
VLM_MODEL_TYPES = {
    "llava",
    "llava_next",
    "qwen2_vl",
    "qwen2_5_vl",
    "idefics3",
    "paligemma",
    "mllama",
    "gemma3",
}


@dataclass
class LoraSettings:
    """LoRA adapter settings (peft). ARES's answer model: r 64, alpha 128, dropout 0.05, all linear layers."""

    r: int = field(default=64, metadata={"help": "LoRA rank."})
    alpha: int = field(default=128, metadata={"help": "LoRA alpha (scaling = alpha / r)."})
    dropout: float = field(default=0.05, metadata={"help": "Dropout on the LoRA path."})
    target_modules: str | list[str] = field(
        default="all-linear", metadata={"help": "Modules to adapt; 'all-linear' adapts every linear layer."}
    )

    def to_peft(self):
        from peft import LoraConfig

        return LoraConfig(
            r=self.r,
            lora_alpha=self.alpha,
            lora_dropout=self.dropout,
            target_modules=self.target_modules,
            task_type="CAUSAL_LM",
        )


@dataclass
class LoadedPolicy:
    """A loaded policy: the model (a peft model when LoRA is on), its processor and tokenizer."""

    model: PreTrainedModel
    processor: Any
    tokenizer: Any
    is_vlm: bool
    name_or_path: str

    @property
    def has_lora(self) -> bool:
        return hasattr(self.model, "disable_adapter")

    def freeze_reference(self) -> None:
        """Keep a frozen copy of the current adapter as the reference: the model as it is now (the start of an
        RL stage), whatever earlier stages trained, the same meaning as full fine-tuning's frozen copy, for
        the price of a second adapter (not a second model)."""
        if not self.has_lora:
            raise RuntimeError("freeze_reference needs LoRA; without it keep a frozen copy of the model")
        model, active = self.model, self.model.active_adapter
        self.release_reference()
        model.add_adapter(REFERENCE_ADAPTER, copy.deepcopy(model.peft_config[active]))
        params = dict(model.named_parameters())
        with torch.no_grad():
            for name, param in params.items():
                if f".{active}." in name:
                    params[name.replace(f".{active}.", f".{REFERENCE_ADAPTER}.")].copy_(param)
        model.set_adapter(active)  # also leaves the reference adapter frozen

    def release_reference(self) -> None:
        """Drop the frozen reference adapter (so that saving writes the trained adapter only)."""
        if self.has_lora and REFERENCE_ADAPTER in self.model.peft_config:
            self.model.delete_adapter(REFERENCE_ADAPTER)

    @contextmanager
    def reference(self) -> Iterator[None]:
        """A context under which `model` computes the reference: the frozen stage-start adapter when
        `freeze_reference()` made one, else the base with the adapter disabled. Without LoRA there is no
        shared base: callers keep a frozen copy instead."""
        if not self.has_lora:
            raise RuntimeError("the reference-by-adapter needs LoRA; keep a frozen copy of the model instead")
        if REFERENCE_ADAPTER not in self.model.peft_config:
            with self.model.disable_adapter():
                yield
            return
        active = self.model.active_adapter
        self.model.set_adapter(REFERENCE_ADAPTER)
        try:
            yield
        finally:
            self.model.set_adapter(active)


def _adapter_base(name_or_path: str) -> str | None:
    """The base model of a local peft adapter folder, or None."""
    import json
    from pathlib import Path

    config = Path(name_or_path) / "adapter_config.json"
    if not config.is_file():
        return None
    return json.loads(config.read_text())["base_model_name_or_path"]


def resolve_kind(name_or_path: str, kind: str = "auto", **hub_kwargs: Any) -> str:
    """'causal' or 'vlm', from `kind` or from the checkpoint's config."""
    if kind in ("causal", "vlm"):
        return kind
    if kind != "auto":
        raise ValueError(f"kind must be 'auto', 'causal' or 'vlm', got {kind!r}")
    config = AutoConfig.from_pretrained(name_or_path, **hub_kwargs)
    return "vlm" if config.model_type in VLM_MODEL_TYPES or hasattr(config, "vision_config") else "causal"


def quantization_config(quantization: str | None, compute_dtype: torch.dtype = torch.bfloat16):
    """A BitsAndBytesConfig for '4bit' / '8bit', or None. Needs bitsandbytes and a CUDA device."""
    if quantization is None:
        return None
    if quantization not in ("4bit", "8bit"):
        raise ValueError(f"quantization must be None, '4bit' or '8bit', got {quantization!r}")
    if importlib.util.find_spec("bitsandbytes") is None or not torch.cuda.is_available():
        raise RuntimeError(
            f"quantization={quantization!r} needs the bitsandbytes package and a CUDA GPU "
            "(pip install bitsandbytes); run without quantization on CPU"
        )
    from transformers import BitsAndBytesConfig

    if quantization == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=compute_dtype,
    )


def _dtype(dtype: str | torch.dtype) -> Any:
    if isinstance(dtype, torch.dtype) or dtype == "auto":
        return dtype
    try:
        return getattr(torch, dtype)
    except AttributeError as err:
        raise ValueError(f"unknown dtype {dtype!r}; use 'auto', 'float32', 'bfloat16' or 'float16'") from err


def _naming_the_model(load: Callable[..., LoadedPolicy]) -> Callable[..., LoadedPolicy]:
    """`load(name_or_path, ...)` with a model that is neither a local folder nor loadable from the hub (not
    found, not a model: OSError or ValueError, HFValidationError among them) turned into a `UserError` naming
    it, with the library's reason."""

    @functools.wraps(load)
    def wrapped(name_or_path: str, *args: Any, **kwargs: Any) -> LoadedPolicy:
        try:
            return load(name_or_path, *args, **kwargs)
        except (OSError, ValueError) as exc:
            path = os.path.expanduser(str(name_or_path))
            if str(name_or_path).startswith((".", "/", "~")) and not os.path.exists(path):
                raise UserError(f"model {name_or_path!r}: no such folder") from None
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UserError(f"model {name_or_path!r} could not be loaded: {reason}") from None

    return wrapped


@_naming_the_model
def load_policy(
    name_or_path: str,
    kind: str = "auto",
    lora: LoraSettings | None = None,
    quantization: str | None = None,
    dtype: str | torch.dtype = "auto",
    device_map: Any = None,
    trust_remote_code: bool = False,
) -> LoadedPolicy:
    """Load a causal LM (`AutoModelForCausalLM` + tokenizer) or a VLM (`AutoModelForImageTextToText` +
    processor) from a hub id or local folder; wrap it with LoRA when `lora` is given. A model that cannot be
    loaded is a `UserError` naming it."""
    hub = {"trust_remote_code": trust_remote_code}
    adapter = _adapter_base(name_or_path)
    if adapter is not None:  # a saved LoRA adapter: load its base, then the adapter (trainable)
        from peft import PeftModel

        base = load_policy(adapter, kind, None, quantization, dtype, device_map, trust_remote_code)
        base.model = PeftModel.from_pretrained(base.model, name_or_path, is_trainable=True)
        base.name_or_path = name_or_path
        return base
    kind = resolve_kind(name_or_path, kind, **hub)
    model_kwargs: dict[str, Any] = {"dtype": _dtype(dtype), **hub}
    if device_map is not None:
        model_kwargs["device_map"] = device_map
    qconfig = quantization_config(quantization)
    if qconfig is not None:
        model_kwargs["quantization_config"] = qconfig
    if kind == "vlm":
        model = AutoModelForImageTextToText.from_pretrained(name_or_path, **model_kwargs)
        processor = load_processor(name_or_path, **hub)
        tokenizer = processor.tokenizer
    else:
        model = AutoModelForCausalLM.from_pretrained(name_or_path, **model_kwargs)
        tokenizer = AutoTokenizer.from_pretrained(name_or_path, **hub)
        processor = tokenizer
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    if lora is not None:
        from peft import get_peft_model, prepare_model_for_kbit_training

        if qconfig is not None:
            model = prepare_model_for_kbit_training(model)
        model = get_peft_model(model, lora.to_peft())
    return LoadedPolicy(model, processor, tokenizer, kind == "vlm", name_or_path)
