"""The TTS side of DLPO: LJSpeech reading and its errors, the WaveGrad 2-style model, pretraining, metrics."""

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from align.diffusion.config import DiffusionRLConfig
from align.diffusion.speech.ljspeech import read_ljspeech
from align.diffusion.speech.tts_text import encode_text
from align.diffusion.speech.wavegrad2 import WaveGrad2, WaveGrad2Config
from align.diffusion.speech_metrics import DNSMOS, PocketSphinxASR, make_mos, word_error_rate
from align.diffusion.trainer import DiffusionRLTrainer
from align.diffusion.tts import TTSPretrainConfig, data_batch, pretrain, tts_task

torch.set_num_threads(1)
SAMPLE = Path(__file__).resolve().parent.parent / "data" / "ljspeech-sample"


def tiny_config() -> WaveGrad2Config:
    return WaveGrad2Config(
        sample_rate=8000,
        upsample_factors=[4, 4],
        encoder_dim=16,
        encoder_layers=1,
        decoder_channels=[16, 8],
        time_embedding_dim=16,
    )


@pytest.fixture(scope="module")
def clips():
    return read_ljspeech(SAMPLE, 8000, resample=True, limit=6)


def test_sample_is_ljspeech_format():
    lines = (SAMPLE / "metadata.csv").read_text().splitlines()
    assert len(lines) == 40 and all(len(line.split("|")) == 3 for line in lines)
    info = sf.info(str(SAMPLE / "wavs" / f"{lines[0].split('|')[0]}.wav"))
    assert (info.samplerate, info.channels, info.subtype) == (22050, 1, "PCM_16")
    utts = read_ljspeech(SAMPLE, 22050, limit=3)
    assert utts[0].text == lines[0].split("|")[2] and utts[0].wav.dtype == np.float32


def _corpus(tmp_path, text="Hello there.", rate=22050, channels=1):
    (tmp_path / "wavs").mkdir()
    (tmp_path / "metadata.csv").write_text(f"X-1|{text}|{text}\n")
    wav = np.zeros((2205, channels) if channels > 1 else 2205, dtype=np.float32)
    sf.write(str(tmp_path / "wavs" / "X-1.wav"), wav, rate)
    return tmp_path


def test_wrong_rate_is_named(tmp_path):
    with pytest.raises(ValueError, match=r"X-1\.wav: sample rate 16000 Hz, the model expects 22050 Hz"):
        read_ljspeech(_corpus(tmp_path, rate=16000), 22050)


def test_stereo_clip_is_named(tmp_path):
    with pytest.raises(ValueError, match=r"X-1\.wav: 2 channels"):
        read_ljspeech(_corpus(tmp_path, channels=2), 22050)


def test_unknown_character_is_named(tmp_path):
    with pytest.raises(ValueError, match=r"metadata\.csv:1 \(X-1\): unknown character\(s\) \['7', '@'\]"):
        read_ljspeech(_corpus(tmp_path, text="Call me @ 7."), 22050)
    with pytest.raises(ValueError, match=r"unknown character\(s\) \['é'\]"):
        encode_text("café")


def test_missing_wav_and_metadata_are_named(tmp_path):
    corpus = _corpus(tmp_path)
    (corpus / "wavs" / "X-1.wav").unlink()
    with pytest.raises(FileNotFoundError, match=r"X-1\.wav: missing \(listed in .*metadata\.csv:1\)"):
        read_ljspeech(corpus, 22050)
    with pytest.raises(FileNotFoundError, match="metadata.csv: not found"):
        read_ljspeech(tmp_path / "nowhere", 22050)


def test_model_shapes_checkpoint_roundtrip_and_missing_checkpoint(tmp_path):
    torch.manual_seed(0)
    model = WaveGrad2(tiny_config()).eval()
    cond, shape = model.prepare(["a short text.", "another, longer text here."])
    assert shape[0] == 2 and shape[1] == 1 and shape[2] % model.config.hop_length == 0
    x = torch.randn(shape)
    out = model(x, torch.tensor([10, 900]), cond)
    assert out.shape == x.shape
    model.save_pretrained(tmp_path / "m")
    again = WaveGrad2.from_pretrained(tmp_path / "m").eval()
    torch.testing.assert_close(again(x, torch.tensor([10, 900]), cond), out)
    with pytest.raises(FileNotFoundError, match=r"nothing/config\.json: missing"):
        WaveGrad2.from_pretrained(tmp_path / "nothing")
    with pytest.raises(ValueError, match="hop length"):
        model(torch.randn(1, 1, 17), torch.tensor([1]), cond.select(torch.tensor([0])))


def test_pretraining_lowers_the_loss_and_resumes_exactly(tmp_path, clips):
    cfg = TTSPretrainConfig(steps=30, batch_size=4, learning_rate=3e-3, save_every=10)
    torch.manual_seed(0)
    pretrain(WaveGrad2(tiny_config()), clips, cfg, tmp_path / "a")
    rows = [json.loads(line) for line in (tmp_path / "a" / "pretrain_log.jsonl").read_text().splitlines()]
    first = np.mean([r["diffusion_loss"] + r["duration_loss"] for r in rows[:5]])
    last = np.mean([r["diffusion_loss"] + r["duration_loss"] for r in rows[-5:]])
    assert last < 0.7 * first, (first, last)
    # stop at 10 steps, then resume to 30: the same weights as the uninterrupted run
    torch.manual_seed(0)
    pretrain(
        WaveGrad2(tiny_config()), clips, TTSPretrainConfig(**{**cfg.__dict__, "steps": 10}), tmp_path / "b"
    )
    torch.manual_seed(123)  # a different init is overwritten by the checkpoint
    resumed = pretrain(WaveGrad2(tiny_config()), clips, cfg, tmp_path / "b")
    full = WaveGrad2.from_pretrained(tmp_path / "a" / "model")
    for a, b in zip(full.state_dict().values(), resumed.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b)


def test_dnsmos_prefers_speech_to_noise(clips):
    mos = DNSMOS(8000, "p808_mos")
    rng = np.random.default_rng(0)
    noise = [rng.normal(0, 0.1, len(c.wav)).clip(-1, 1).astype(np.float32) for c in clips[:3]]
    speech = mos([c.wav for c in clips[:3]])
    assert speech.min() > mos(noise).max() + 0.5
    assert make_mos("dnsmos", 8000)([clips[0].wav]).shape == (1,)
    with pytest.raises(ValueError, match="mono"):
        mos([np.zeros((100, 2), dtype=np.float32)])
    with pytest.raises(ValueError, match="unknown MOS predictor"):
        make_mos("nisqa", 8000)


def test_word_error_rate_and_offline_asr(clips):
    assert word_error_rate(["the cat sat", "a dog"], ["the cat sat", "a"]) == pytest.approx(1 / 5)
    assert word_error_rate(["Hello, world!"], ["hello world"]) == 0.0
    asr = PocketSphinxASR(8000)
    hyps = asr([c.wav for c in clips[:3]])
    assert all(isinstance(h, str) for h in hyps) and any(h for h in hyps)
    assert word_error_rate([c.text for c in clips[:3]], hyps[:3]) < 1.0
    # a clip's transcript does not depend on what the decoder heard before (noisy clips showed it did)
    rng = np.random.default_rng(0)
    noisy = [
        (c.wav * 0.5 + rng.normal(0, 0.05, len(c.wav))).clip(-1, 1).astype(np.float32) for c in clips[:3]
    ]
    again = asr([noisy[0], noisy[0], noisy[2], noisy[0]])
    assert again[0] == again[1] == again[3]


def test_tts_task_through_the_trainer(tmp_path, clips):
    torch.manual_seed(0)
    model = WaveGrad2(tiny_config())
    loud = lambda wavs: np.array([float(np.abs(w).mean()) for w in wavs])  # noqa: E731
    task = tts_task(model, [c.text for c in clips], loud, clips)
    cfg = DiffusionRLConfig(
        output_dir=str(tmp_path),
        num_inference_steps=4,
        train_steps_per_trajectory=2,
        diffusion_timesteps=2,
        diffusion_batch_size=2,
        prompts_per_iteration=4,
        sampling_batch_size=2,
        minibatch_size=2,
    )
    trainer = DiffusionRLTrainer(model, model.config.scheduler(), task, cfg)
    m = trainer.step()
    assert np.isfinite([m["reward"], m["kl"], m["diffusion_loss"], m["pg_loss"]]).all()
    x0, cond = data_batch(model, clips[:2])
    assert x0.shape[-1] == int(cond.frame_lengths.max()) * model.config.hop_length
    assert torch.equal(x0[0, 0, : len(clips[0].wav)], torch.from_numpy(clips[0].wav))
    nan_task = tts_task(model, [c.text for c in clips], lambda w: np.full(len(w), np.nan), None)
    with pytest.raises(ValueError, match="non-finite reward"):
        DiffusionRLTrainer(
            model,
            model.config.scheduler(),
            nan_task,
            DiffusionRLConfig(**{**cfg.__dict__, "output_dir": str(tmp_path / "n")}),
        ).step()


def test_recipe_configs_load():
    from recipes_sections import load_recipe

    load_config = load_recipe("dlpo_tts").load_config

    for name in ("dlpo_tts_demo", "dlpo_tts_paper"):
        cfg = load_config(name, [])
        assert cfg["rl"].alpha == 5.0 and cfg["rl"].beta == 1.0
    paper = load_config("dlpo_tts_paper", [])
    assert (paper["rl"].diffusion_timesteps, paper["rl"].learning_rate, paper["model"].sample_rate) == (
        11,
        3e-5,
        22050,
    )
    cfg = load_config("dlpo_tts_demo", ["run.objectives=dlpo,ddpo", "run.seeds=0,2"])
    assert (cfg["run"].objectives, cfg["run"].seeds) == (["dlpo", "ddpo"], [0, 2])
    with pytest.raises(ValueError, match=r"run.objectives: unknown \['ppo'\]"):
        load_config("dlpo_tts_demo", ["run.objectives=dlpo,ppo"])
    with pytest.raises(ValueError, match="objective must be one of"):
        DiffusionRLConfig(objective="ppo")


def test_training_summary_and_report(tmp_path):
    from align.diffusion.tts_run import report, training_summary

    rows = [
        {"iteration": i, "reward": r, "kl": k, "diffusion_loss": d, "samples": 8, "time/iteration_s": 2.0}
        for i, (r, k, d) in enumerate([(1.0, 0.0, 0.5), (2.0, 0.1, 0.4), (3.0, 0.2, 0.3), (9.0, 0.3, 0.2)])
    ]
    rows.append({**rows[-1], "reward": 4.0})  # iteration 3 repeated after a kill: the rerun counts
    (tmp_path / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    s = training_summary(tmp_path / "metrics.jsonl", window=2)
    assert (s["train_reward_first"], s["train_reward_last"], s["final_kl"]) == (1.5, 3.5, 0.25)
    assert s["diffusion_loss_last"] == pytest.approx(0.25) and s["train_samples_per_s"] == 4.0
    ev = {"mos": 2.0, "mos_std": 0.1, "wer": 0.5, "samples_per_s": 1.0, "audio_s_per_s": 1.0}
    ev["mos_scores"] = [2.0, 2.0]
    runs = {
        "dlpo/seed0": {**ev, "mos": 3.0, "mos_diff": 0.1, "mos_diff_se": 0.02, **s},
        "dlpo/seed1": {**ev, "mos": 4.0, "mos_diff": 0.3, "mos_diff_se": 0.04, **s},
    }
    table = report({"evaluation": {"eval_seed": 1, "eval_samples": 2}, "pretrained": ev, **runs})
    # over seeds: mean of the paired differences +0.2, s.e. std(0.1, 0.3) / sqrt(2) = 0.1
    assert (
        "| dlpo | 3.500 ± 0.500 | +0.200 ± 0.100 | seed0 +0.100 ± 0.020, seed1 +0.300 ± 0.040 | 0.500 ± 0.000 | "
        "1.500 -> 3.500 | 0.2500 |" in table
    ), table
    assert "| pretrained | 2.000 | - |" in table and table.index("| pretrained |") < table.index("| dlpo |")


def test_paired_difference_by_hand():
    from align.diffusion.tts_run import paired_difference

    # differences 1, 2, 3: mean 2, std (ddof 1) 1, s.e. 1 / sqrt(3)
    mean, se, n = paired_difference([2.0, 4.0, 6.0], [1.0, 2.0, 3.0])
    assert (mean, n) == (2.0, 3) and se == pytest.approx(3**-0.5)
    with pytest.raises(ValueError, match="equal-length"):
        paired_difference([1.0, 2.0], [1.0])


def test_evaluation_protocol_mismatch_is_named(tmp_path):
    from recipes_sections import load_recipe

    from align.diffusion.tts_run import DLPOTTSRun
    from align.user_errors import UserError

    cfg = load_recipe("dlpo_tts").load_config(
        "dlpo_tts_demo", [f"run.output_dir={tmp_path}", "run.eval_samples_per_text=2"]
    )
    (tmp_path / "results.json").write_text(
        json.dumps({"ground_truth": {}, "evaluation": {"eval_seed": 7, "eval_samples": 8}})
    )
    run = DLPOTTSRun(cfg["run"], cfg["model"], cfg["pretrain"], cfg["rl"])
    run.pretrained_model = lambda utts: None  # the check comes before any model is needed
    with pytest.raises(UserError, match="evaluated with .*eval_seed.: 7.*another run.output_dir"):
        run.execute()


def test_online_only_rewards_say_what_they_need():
    try:
        import utmos  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="pip install utmos"):
            make_mos("utmos", 16000)
    else:
        pytest.skip("utmos is installed here")
