"""Policy loading (causal LMs and VLMs, LoRA, quantization), tiny offline models, and the WaveGrad 2-style TTS
model for DLPO."""

from align.models.inputs import encode
from align.models.loading import LoadedPolicy, LoraSettings, load_policy
from align.models.tiny import build_tiny_lm, build_tiny_vlm
from align.models.wavegrad2 import WaveGrad2, WaveGrad2Config

__all__ = [
    "LoadedPolicy",
    "LoraSettings",
    "WaveGrad2",
    "WaveGrad2Config",
    "build_tiny_lm",
    "build_tiny_vlm",
    "encode",
    "load_policy",
]
