"""Reading a corpus in LJSpeech 1.1's format: `metadata.csv` (`id|transcript|normalized transcript`, no header)
and `wavs/<id>.wav`, mono, 22,050 Hz in the release (any rate the model is configured for)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from align.diffusion.speech.tts_text import encode_text


@dataclass
class Utterance:
    """One clip: its id, normalised transcript and waveform (float32 in [-1, 1] at the model's rate)."""

    id: str
    text: str
    wav: np.ndarray


def read_ljspeech(
    root: str | Path, sample_rate: int = 22050, resample: bool = False, limit: int | None = None
) -> list[Utterance]:
    """All clips of an LJSpeech-format folder. A clip at another rate is an error unless `resample`; a clip
    with more than one channel, a missing wav, a malformed line or an unknown character is an error naming it."""
    import soundfile as sf

    root = Path(root)
    meta = root / "metadata.csv"
    if not meta.is_file():
        raise FileNotFoundError(f"{meta}: not found (an LJSpeech folder has metadata.csv and wavs/)")
    out = []
    for number, line in enumerate(meta.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split("|")
        if len(fields) not in (2, 3) or not fields[0]:
            raise ValueError(f"{meta}:{number}: expected 'id|transcript|normalized transcript', got {line!r}")
        clip_id, text = fields[0], fields[-1] or fields[1]
        encode_text(text, where=f"{meta}:{number} ({clip_id})")
        path = root / "wavs" / f"{clip_id}.wav"
        if not path.is_file():
            raise FileNotFoundError(f"{path}: missing (listed in {meta}:{number})")
        info = sf.info(str(path))
        if info.channels != 1:
            raise ValueError(f"{path}: {info.channels} channels; LJSpeech clips are mono (1 channel)")
        if info.samplerate != sample_rate and not resample:
            raise ValueError(
                f"{path}: sample rate {info.samplerate} Hz, the model expects {sample_rate} Hz "
                "(resample the corpus, or pass resample=True)"
            )
        wav, rate = sf.read(str(path), dtype="float32")
        if rate != sample_rate:
            import librosa

            wav = librosa.resample(wav, orig_sr=rate, target_sr=sample_rate).astype(np.float32)
        out.append(Utterance(clip_id, text, np.clip(wav, -1.0, 1.0)))
        if limit is not None and len(out) >= limit:
            break
    if not out:
        raise ValueError(f"{meta}: no clips")
    return out
