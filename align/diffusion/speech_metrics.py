"""Speech rewards and metrics: MOS predictors (DNSMOS offline from `speechmos`, UTMOS online) and WER with
`jiwer` against an ASR (pocketsphinx offline, Whisper online). All take a list of mono float waveforms."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Sequence

import numpy as np

WaveformScorer = Callable[[Sequence[np.ndarray]], np.ndarray]
DNSMOS_RATE = 16000
DNSMOS_WINDOW_S = 9.01


def resample(wav: np.ndarray, rate: int, target: int) -> np.ndarray:
    if rate == target:
        return np.asarray(wav, dtype=np.float32)
    import librosa

    return librosa.resample(np.asarray(wav, dtype=np.float32), orig_sr=rate, target_sr=target)


def _check(wavs: Sequence[np.ndarray], who: str) -> None:
    for i, w in enumerate(wavs):
        w = np.asarray(w)
        if w.ndim != 1:
            raise ValueError(f"{who}: waveform {i} has shape {w.shape}; expected mono (samples,)")
        if w.size == 0 or not np.isfinite(w).all():
            raise ValueError(f"{who}: waveform {i} is empty or has non-finite samples")


class DNSMOS:
    """DNSMOS P.835 overall quality (Reddy et al. 2022) from the ONNX models inside the `speechmos` wheel.

    A clip shorter than DNSMOS's 9.01 s window is repeated to fill it (as `speechmos` does) and scored in one
    window, so a score costs one ONNX call. `field`: ovrl_mos (default), sig_mos, bak_mos or p808_mos."""

    def __init__(self, sample_rate: int, field: str = "ovrl_mos", threads: int = 1):
        import onnxruntime as ort
        from speechmos import dnsmos

        if field not in ("ovrl_mos", "sig_mos", "bak_mos", "p808_mos"):
            raise ValueError(f"DNSMOS field must be ovrl_mos, sig_mos, bak_mos or p808_mos, got {field!r}")
        here = os.path.join(os.path.dirname(dnsmos.__file__), "dnsmos_models")
        options = ort.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = threads
        self.model = dnsmos.DNSMOS.__new__(dnsmos.DNSMOS)
        self.model.primary_model_path = os.path.join(here, "sig_bak_ovr.onnx")
        self.model.onnx_sess = ort.InferenceSession(self.model.primary_model_path, options)
        self.model.p808_onnx_sess = ort.InferenceSession(os.path.join(here, "model_v8.onnx"), options)
        self.sample_rate, self.field = sample_rate, field

    def __call__(self, wavs: Sequence[np.ndarray]) -> np.ndarray:
        _check(wavs, "DNSMOS")
        window = math.ceil(DNSMOS_WINDOW_S * DNSMOS_RATE)
        scores = []
        for w in wavs:
            x = np.clip(resample(w, self.sample_rate, DNSMOS_RATE), -1.0, 1.0)
            x = np.tile(x, math.ceil(window / len(x)))[:window]
            scores.append(float(self.model(x, DNSMOS_RATE, False)[self.field]))
        return np.asarray(scores, dtype=np.float64)


class UTMOS:
    """UTMOS (Saeki et al. 2022), the DLPO paper's reward, via the `utmos` package; it downloads its weights
    on first use, so it needs the internet (or a warm cache)."""

    def __init__(self, sample_rate: int):
        try:
            import utmos
        except ImportError as e:
            raise ImportError(
                "reward 'utmos' needs `pip install utmos` (and its weights, downloaded online)"
            ) from e
        self.model, self.sample_rate = utmos.Score(), sample_rate

    def __call__(self, wavs: Sequence[np.ndarray]) -> np.ndarray:
        _check(wavs, "UTMOS")
        return np.asarray([float(self.model.calculate_wav(np.asarray(w), self.sample_rate)) for w in wavs])


def make_mos(name: str, sample_rate: int) -> WaveformScorer:
    """'dnsmos' (offline default), 'dnsmos:<field>', or 'utmos'."""
    kind, _, field = name.partition(":")
    if kind == "dnsmos":
        return DNSMOS(sample_rate, field or "ovrl_mos")
    if kind == "utmos":
        return UTMOS(sample_rate)
    raise ValueError(f"unknown MOS predictor {name!r}; use dnsmos, dnsmos:<field> or utmos")


class PocketSphinxASR:
    """Offline English ASR with the acoustic and language models inside the `pocketsphinx` wheel."""

    def __init__(self, sample_rate: int):
        from pocketsphinx import Decoder

        self.decoder = Decoder(samprate=DNSMOS_RATE, loglevel="FATAL")
        self.sample_rate = sample_rate

    def __call__(self, wavs: Sequence[np.ndarray]) -> list[str]:
        _check(wavs, "pocketsphinx")
        out = []
        for w in wavs:
            pcm = (np.clip(resample(w, self.sample_rate, DNSMOS_RATE), -1, 1) * 32767).astype(np.int16)
            # the feature front end (cepstral mean normalisation) adapts across utterances: reset it, so that a
            # clip's transcript does not depend on what was decoded before
            self.decoder.reinit_feat()
            self.decoder.start_utt()
            self.decoder.process_raw(pcm.tobytes(), full_utt=True)
            self.decoder.end_utt()
            hyp = self.decoder.hyp()
            out.append(hyp.hypstr if hyp is not None else "")
        return out


class WhisperASR:
    """Whisper through a transformers pipeline (weights from the hub: for users online)."""

    def __init__(self, sample_rate: int, model: str = "openai/whisper-small.en", device: str | int = -1):
        from transformers import pipeline

        self.pipe = pipeline("automatic-speech-recognition", model=model, device=device)
        self.sample_rate = sample_rate

    def __call__(self, wavs: Sequence[np.ndarray]) -> list[str]:
        _check(wavs, "whisper")
        return [
            self.pipe({"raw": resample(w, self.sample_rate, 16000), "sampling_rate": 16000})["text"]
            for w in wavs
        ]


def make_asr(name: str, sample_rate: int) -> Callable[[Sequence[np.ndarray]], list[str]]:
    """'pocketsphinx' (offline default), 'whisper' or 'whisper:<hub id or path>'."""
    kind, _, model = name.partition(":")
    if kind == "pocketsphinx":
        return PocketSphinxASR(sample_rate)
    if kind == "whisper":
        return WhisperASR(sample_rate, model or "openai/whisper-small.en")
    raise ValueError(f"unknown ASR {name!r}; use pocketsphinx or whisper[:model]")


def normalise_words(text: str) -> str:
    return " ".join(re.sub(r"[^a-z' ]+", " ", text.lower()).split())


def word_error_rate(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    """Corpus WER (jiwer) after lower-casing and dropping punctuation; an empty hypothesis counts all deletions."""
    import jiwer

    if len(references) != len(hypotheses):
        raise ValueError(f"{len(references)} references but {len(hypotheses)} hypotheses")
    refs = [normalise_words(r) for r in references]
    if any(not r for r in refs):
        raise ValueError("word_error_rate: a reference transcript is empty after normalisation")
    return float(jiwer.wer(refs, [normalise_words(h) for h in hypotheses]))
