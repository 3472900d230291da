"""Text-to-speech for DLPO: the WaveGrad 2-style model (`wavegrad2`), its character inputs (`tts_text`) and the
LJSpeech-format corpus reader (`ljspeech`)."""

from align.diffusion.speech.ljspeech import Utterance, read_ljspeech
from align.diffusion.speech.wavegrad2 import TTSCondition, WaveGrad2, WaveGrad2Config

__all__ = ["TTSCondition", "Utterance", "WaveGrad2", "WaveGrad2Config", "read_ljspeech"]
