"""Policy loading (causal LMs and VLMs, LoRA, quantization) and tiny offline models. (The text-to-speech model
for DLPO is `align.diffusion.speech`.)"""

from align.models.inputs import encode
from align.models.loading import LoadedPolicy, LoraSettings, load_policy
from align.models.tiny import build_tiny_lm, build_tiny_vlm

__all__ = [
    "LoadedPolicy",
    "LoraSettings",
    "build_tiny_lm",
    "build_tiny_vlm",
    "encode",
    "load_policy",
]
