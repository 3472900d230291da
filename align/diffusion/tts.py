"""DLPO for text-to-speech: the WaveGrad 2-style model as a diffusion-RL task, its pretraining on an
LJSpeech-format corpus, and evaluation (MOS, WER, samples/s, audio and spectrograms)."""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from align.checkpoints import load_checkpoint, save_checkpoint
from align.diffusion.speech.ljspeech import Utterance
from align.diffusion.speech.tts_text import encode_text
from align.diffusion.speech.wavegrad2 import TTSCondition, WaveGrad2
from align.diffusion.speech_metrics import WaveformScorer, word_error_rate
from align.diffusion.steps import noise_prediction_loss, training_target
from align.diffusion.task import DiffusionTask
from align.stopping import StopRequested
from align.train_hooks import TrainHooks

PRETRAIN_STATE = "pretrain_state.pt"


def uniform_durations(n_chars: int, n_frames: int) -> torch.Tensor:
    """Duration targets without an aligner: each character gets an equal share of the clip's frames."""
    return torch.full((n_chars,), n_frames / n_chars)


def data_batch(model: WaveGrad2, utterances: list[Utterance]) -> tuple[torch.Tensor, TTSCondition]:
    """Real clips as x_0 (B, 1, samples), zero-padded to whole frames, with uniform-duration conditioning."""
    hop = model.config.hop_length
    frames = [math.ceil(len(u.wav) / hop) for u in utterances]
    durations = [
        uniform_durations(len(encode_text(u.text)), f) for u, f in zip(utterances, frames, strict=True)
    ]
    cond = model.condition_from_durations([u.text for u in utterances], durations)
    x0 = torch.zeros(len(utterances), 1, max(frames) * hop)
    for row, u in enumerate(utterances):
        x0[row, 0, : len(u.wav)] = torch.from_numpy(u.wav)
    return x0.to(cond.tokens.device), cond


def trim(x0: torch.Tensor, cond: TTSCondition, hop: int) -> list[np.ndarray]:
    """The sampled waveforms without batch padding."""
    return [x0[i, 0, : int(cond.frame_lengths[i]) * hop].float().cpu().numpy() for i in range(len(x0))]


def tts_task(
    model: WaveGrad2, texts: list[str], mos: WaveformScorer, data: list[Utterance] | None
) -> DiffusionTask:
    """Prompts are transcripts; the reward is the MOS predictor's score of the trimmed waveform."""
    hop = model.config.hop_length

    def reward(x0, prompts, cond):
        return torch.as_tensor(mos(trim(x0, cond, hop)), dtype=torch.float32)

    return DiffusionTask(
        prompts=list(texts),
        prepare=lambda m, p: m.prepare(p),
        reward_fn=reward,
        data=data,
        prepare_data=(lambda m, items: data_batch(m, items)) if data is not None else None,
    )


# --- pretraining ------------------------------------------------------------------------------------------
@dataclass
class TTSPretrainConfig:
    """Pretraining the TTS model on an LJSpeech-format corpus (diffusion loss + duration loss)."""

    steps: int = field(default=2000, metadata={"help": "Optimizer steps."})
    batch_size: int = field(default=8, metadata={"help": "Clips per step."})
    learning_rate: float = field(default=1e-3, metadata={"help": "Adam learning rate."})
    diffusion_loss_kind: str = field(default="l1", metadata={"help": "l1 (WaveGrad) or l2."})
    duration_weight: float = field(default=1.0, metadata={"help": "Weight of the log-duration MSE."})
    save_every: int = field(default=200, metadata={"help": "Steps between resumable checkpoints."})
    seed: int = field(default=0, metadata={"help": "Seed for batches, timesteps and noise."})


def _save_pretrain_state(
    out: Path, model: WaveGrad2, optimizer: torch.optim.Optimizer, step: int, config: TTSPretrainConfig
) -> None:
    save_checkpoint(
        out / PRETRAIN_STATE,
        {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "step": step,
            "config": asdict(config),
        },
    )


def pretrain(
    model: WaveGrad2,
    utterances: list[Utterance],
    config: TTSPretrainConfig,
    output_dir: str | Path,
    hooks: TrainHooks | None = None,
    save: bool = True,
) -> WaveGrad2:
    """Train from scratch (or resume from `output_dir`); the final model is saved under output_dir/model.
    With `hooks`: a progress bar (loss), and a stop request saves the state at the current step and raises
    `StopRequested` (batches and noise are seeded by step, so the resumed run repeats an uninterrupted one).
    With `save=False` nothing is written and nothing shown (the other ranks of a launch compute the same model
    as the main one, which writes, so that none waits for it)."""
    hooks = hooks or TrainHooks()
    out = Path(output_dir)
    if save:
        out.mkdir(parents=True, exist_ok=True)
    scheduler = model.config.scheduler()
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    step = 0
    if (out / PRETRAIN_STATE).is_file():
        state = load_checkpoint(out / PRETRAIN_STATE)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        step = state["step"]
        if 0 < step < config.steps and save:
            print(f"[pretrain] resuming from step {step} of {config.steps}", flush=True)
    model.train()
    log = (out / "pretrain_log.jsonl").open("a") if save else None
    bar = hooks.progress(config.steps, "pretrain", initial=step, main=save)
    while step < config.steps:
        if hooks.stop_requested():
            bar.close()
            if log is not None:
                log.close()
                _save_pretrain_state(out, model, optimizer, step, config)
            raise StopRequested(step, config.steps, "pretrain step")
        g = torch.Generator().manual_seed(config.seed * 1000003 + step)
        torch.manual_seed(config.seed * 1000003 + step)  # dropout: a resumed run repeats an uninterrupted one
        idx = torch.randint(len(utterances), (config.batch_size,), generator=g)
        x0, cond = data_batch(model, [utterances[i] for i in idx])
        t = torch.randint(scheduler.config.num_train_timesteps, (len(idx),), generator=g)
        noise = torch.randn(x0.shape, generator=g)
        x_t = scheduler.add_noise(x0, noise, t)
        diff = noise_prediction_loss(
            model(x_t, t, cond), training_target(scheduler, x0, noise, t), config.diffusion_loss_kind
        )
        h = model.encoder(cond.tokens, cond.token_lengths)
        pred = model.upsampling.predict_durations(h, cond.token_lengths)
        mask = cond.durations > 0
        dur = F.mse_loss(torch.log1p(pred[mask]), torch.log1p(cond.durations[mask]))
        loss = diff + config.duration_weight * dur
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        step += 1
        hooks.show(bar, loss=float(loss.detach()))
        if log is None:
            continue
        log.write(
            json.dumps(
                {"step": step, "diffusion_loss": float(diff.detach()), "duration_loss": float(dur.detach())}
            )
            + "\n"
        )
        if (config.save_every and step % config.save_every == 0) or step == config.steps:
            log.flush()
            _save_pretrain_state(out, model, optimizer, step, config)
    bar.close()
    model.eval()
    if log is not None:
        log.close()
        model.save_pretrained(out / "model")
    return model


# --- evaluation -------------------------------------------------------------------------------------------
def save_audio_and_spectrogram(wav: np.ndarray, rate: int, stem: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import soundfile as sf

    sf.write(str(stem.with_suffix(".wav")), wav, rate)
    fig, ax = plt.subplots(figsize=(6, 2.5))
    ax.specgram(wav, NFFT=256, Fs=rate, noverlap=192, cmap="magma")
    ax.set_title(title, fontsize=8)
    ax.set_xlabel("s")
    ax.set_ylabel("Hz")
    fig.tight_layout()
    fig.savefig(stem.with_suffix(".png"), dpi=80)
    plt.close(fig)


def evaluate_tts(
    model: WaveGrad2,
    texts: list[str],
    mos: WaveformScorer,
    asr,
    num_inference_steps: int,
    seed: int,
    out_dir: str | Path | None = None,
    n_audio: int = 2,
    batch_size: int = 8,
) -> dict[str, float]:
    """Mean MOS, corpus WER against `asr` and sampling speed on `texts`; writes a few wavs and spectrograms.
    `mos_scores` holds every sample's score, in the order of `texts`, for paired comparisons between models
    evaluated with the same `seed`."""
    model.eval()
    generator = torch.Generator().manual_seed(seed)
    wavs, seconds = [], 0.0
    for start in range(0, len(texts), batch_size):
        t0 = time.perf_counter()
        x, lengths = model.synthesise(texts[start : start + batch_size], None, num_inference_steps, generator)
        seconds += time.perf_counter() - t0
        wavs += [x[i, : int(lengths[i])].cpu().numpy() for i in range(len(x))]
    scores = mos(wavs)
    hyps = asr(wavs) if asr is not None else None
    result = {
        "mos": float(np.mean(scores)),
        "mos_std": float(np.std(scores)),
        "mos_scores": [float(v) for v in scores],
        "wer": word_error_rate(texts, hyps) if hyps is not None else float("nan"),
        "samples_per_s": len(texts) / max(seconds, 1e-9),
        "audio_s_per_s": sum(len(w) for w in wavs) / model.config.sample_rate / max(seconds, 1e-9),
    }
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        for i in range(min(n_audio, len(wavs))):
            save_audio_and_spectrogram(
                wavs[i], model.config.sample_rate, out / f"sample{i}", f"{texts[i]} (MOS {scores[i]:.2f})"
            )
        (out / "transcripts.json").write_text(
            json.dumps({"texts": texts, "asr": hyps, "mos": scores.tolist()}, indent=1)
        )
    return result
