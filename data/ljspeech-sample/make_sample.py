"""Synthesise this folder's LJSpeech-format sample offline with eSpeak NG (the `espeakng-loader` wheel).

python data/ljspeech-sample/make_sample.py            # rewrites metadata.csv and wavs/ beside this file

Each sentence below was written for this sample. The output follows LJSpeech 1.1: `metadata.csv` with
`id|transcript|normalized transcript` lines (no header) and `wavs/<id>.wav`, mono 16-bit PCM at 22,050 Hz.
"""

from __future__ import annotations

import ctypes
from pathlib import Path

import numpy as np
import soundfile as sf

SENTENCES = [
    "The cat sat on the warm mat.",
    "A small boat drifts past the pier.",
    "Rain fell on the quiet town.",
    "She reads a book every night.",
    "The old clock struck nine.",
    "We walked along the sandy shore.",
    "His dog likes to chase the ball.",
    "Bright stars filled the clear sky.",
    "The baker opened the shop at dawn.",
    "Fresh bread smells very good.",
    "A green frog sat by the pond.",
    "They planted trees in the park.",
    "The train left the station late.",
    "My sister paints blue flowers.",
    "Snow covered the mountain top.",
    "The children sang a happy song.",
    "He fixed the broken chair.",
    "The river runs to the sea.",
    "Please close the kitchen door.",
    "Birds build nests in the spring.",
    "The lamp lit the dark room.",
    "Our teacher told a funny story.",
    "The wind blew the leaves away.",
    "I drink tea with my breakfast.",
    "The market was busy today.",
    "A red kite flew over the hill.",
    "The farmer feeds his horses.",
    "Soft music played in the hall.",
    "We found a shell on the beach.",
    "The moon rose above the trees.",
    "Tom gave his friend a letter.",
    "The pilot landed the plane safely.",
    "Cold water fills the glass.",
    "The museum opens at ten.",
    "Her garden has many roses.",
    "The bus stops near my house.",
    "A gray cloud hid the sun.",
    "The boy kicked the ball far.",
    "Lunch is ready on the table.",
    "The ship sailed into the harbor.",
]

SAMPLE_RATE = 22050


def synthesise(texts: list[str], voice: str = "en-us", rate_wpm: int = 165) -> tuple[list[np.ndarray], int]:
    """Speak each text with the eSpeak NG library that `espeakng-loader` ships; int16 arrays and the rate."""
    import espeakng_loader

    lib = ctypes.CDLL(espeakng_loader.get_library_path())
    rate = lib.espeak_Initialize(2, 0, ctypes.c_char_p(espeakng_loader.get_data_path().encode()), 0)
    if rate <= 0:
        raise RuntimeError("eSpeak NG failed to initialise")
    chunks: list[np.ndarray] = []
    callback_type = ctypes.CFUNCTYPE(
        ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
    )

    def collect(wav, n, _events):  # eSpeak hands over audio in pieces
        if n > 0:
            chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
        return 0

    callback = callback_type(collect)
    lib.espeak_SetSynthCallback(callback)
    if lib.espeak_SetVoiceByName(voice.encode()) != 0:
        raise ValueError(f"eSpeak NG has no voice {voice!r}")
    lib.espeak_SetParameter(1, rate_wpm, 0)  # espeakRATE
    out = []
    for text in texts:
        chunks.clear()
        data = text.encode()
        lib.espeak_Synth(ctypes.c_char_p(data), len(data) + 1, 0, 1, 0, 1, None, None)
        lib.espeak_Synchronize()
        out.append(np.concatenate(chunks))
    return out, rate


def trim_silence(wav: np.ndarray, threshold: int = 200, pad: int = 1000) -> np.ndarray:
    loud = np.flatnonzero(np.abs(wav) > threshold)
    if loud.size == 0:
        return wav
    return wav[max(loud[0] - pad, 0) : loud[-1] + pad]


def main() -> None:
    here = Path(__file__).resolve().parent
    wavs, rate = synthesise(SENTENCES)
    if rate != SAMPLE_RATE:
        raise RuntimeError(f"eSpeak NG spoke at {rate} Hz, expected {SAMPLE_RATE}")
    (here / "wavs").mkdir(exist_ok=True)
    lines = []
    for i, (text, wav) in enumerate(zip(SENTENCES, wavs, strict=True), start=1):
        clip_id = f"ES001-{i:04d}"
        sf.write(here / "wavs" / f"{clip_id}.wav", trim_silence(wav), rate, subtype="PCM_16")
        lines.append(f"{clip_id}|{text}|{text}")
    (here / "metadata.csv").write_text("\n".join(lines) + "\n")
    print(f"wrote {len(lines)} clips to {here}")


if __name__ == "__main__":
    main()
