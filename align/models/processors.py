"""Loading a VLM's processor, with an image-only fallback for machines without torchvision.

Qwen2-VL, Qwen2.5-VL and SmolVLM processors include a video processor, and transformers' video processors
need torchvision. We only send images, so when torchvision is missing the processor is built without its
video part (the image processor then uses its PIL backend). The video settings in the folder are kept and
written back on save, so a folder saved here still loads with the full processor elsewhere.
"""

from __future__ import annotations

import importlib.util
import json
import logging
from pathlib import Path
from typing import Any

import transformers
from transformers import AutoProcessor

logger = logging.getLogger(__name__)
VIDEO = "video_processor"


def image_only_class(cls: type) -> type:
    """`cls` (a ProcessorMixin with a video processor) without the video processor. The subclass keeps the
    name of `cls`, so the `processor_class` it saves is the real one."""

    def get_attributes(sub: type) -> list[str]:
        return [a for a in cls.get_attributes() if a != VIDEO]

    def to_dict(self: Any) -> dict[str, Any]:
        out = cls.to_dict(self)
        if getattr(self, "_video_settings", None):
            out[VIDEO] = self._video_settings
        return out

    return type(
        cls.__name__,
        (cls,),
        {"get_attributes": classmethod(get_attributes), "to_dict": to_dict, "__module__": cls.__module__},
    )


def _processor_class_name(path: Path) -> str | None:
    for name in ("processor_config.json", "preprocessor_config.json", "tokenizer_config.json"):
        file = path / name
        if file.is_file():
            value = json.loads(file.read_text()).get("processor_class")
            if value:
                return value
    return None


def load_processor(name_or_path: str, **hub: Any) -> Any:
    """`AutoProcessor.from_pretrained`, or the image-only processor when torchvision is missing and the
    processor's only need for it is video."""
    try:
        return AutoProcessor.from_pretrained(name_or_path, **hub)
    except (ImportError, OSError, ValueError, TypeError, AttributeError):
        path = Path(name_or_path)
        name = _processor_class_name(path) if path.is_dir() else None
        cls = getattr(transformers, name, None) if name else None
        if (
            importlib.util.find_spec("torchvision") is not None
            or cls is None
            or VIDEO not in cls.get_attributes()
        ):
            raise
        logger.warning("%s: torchvision is missing; loading %s without its video processor", path, name)
        processor = image_only_class(cls).from_pretrained(name_or_path, **hub)
        config = path / "processor_config.json"
        if config.is_file():
            processor._video_settings = json.loads(config.read_text()).get(VIDEO)
        return processor
