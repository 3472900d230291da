"""The DLPO TTS experiment: pretrain on an LJSpeech-format corpus, evaluate the pretrained model, fine-tune it
with each objective and seed through the same trainer, evaluate each, and write results.json + report.md.
Every model is evaluated with the same noise (`run.eval_seed`) on `eval_samples_per_text` samples of each held-out
transcript, so that each fine-tuned model's MOS is compared with the pretrained model's sample by sample (a
paired difference with its standard error). Every stage resumes: finished results are kept, unfinished training
continues from its checkpoint. The run folder's `run_state.json` (a `RunRecord`) records the config at the first
start and refuses a later start that changes a result-changing setting (adding objectives or seeds is allowed:
each is a result of its own); `results.json` holds the results, written atomically."""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from align.diffusion.config import DiffusionRLConfig
from align.diffusion.objectives import OBJECTIVES
from align.diffusion.speech.ljspeech import read_ljspeech
from align.diffusion.speech.wavegrad2 import WaveGrad2, WaveGrad2Config
from align.diffusion.speech_metrics import make_asr, make_mos, word_error_rate
from align.diffusion.trainer import DiffusionRLTrainer
from align.diffusion.tts import TTSPretrainConfig, evaluate_tts, pretrain, tts_task
from align.recipe_config import config_record, neutral_fields
from align.run_folder import open_run_record, resume_note
from align.run_state import write_json_atomic, write_text_atomic
from align.train_hooks import TrainHooks
from align.trainers.distributed import launch_state
from align.user_errors import UserError

STATE_FILE = "run_state.json"
RESULTS_FILE = "results.json"


@dataclass
class DLPOTTSRunConfig:
    """What to run: data, rewards, objectives, seeds and evaluation."""

    output_dir: str = field(default="runs/dlpo-tts", metadata={"help": "Where everything goes."})
    data_dir: str = field(
        default="",
        metadata={
            "help": "LJSpeech-format folder (metadata.csv + wavs/); empty: our sample (data/ljspeech-sample), "
            "found from any working directory."
        },
    )
    resample: bool = field(
        default=False, metadata={"help": "Resample clips whose rate differs from the model's."}
    )
    eval_count: int = field(default=8, metadata={"help": "Last N clips held out as evaluation transcripts."})
    pretrained: str = field(
        default="", metadata={"help": "A saved WaveGrad2 folder to start from (skips pretraining)."}
    )
    mos: str = field(default="dnsmos", metadata={"help": "Reward/metric: dnsmos, dnsmos:<field> or utmos."})
    asr: str = field(
        default="pocketsphinx", metadata={"help": "ASR for WER: pocketsphinx or whisper[:model]."}
    )
    objectives: list[str] = field(
        default_factory=lambda: ["dlpo", "rwr", "ddpo", "dpok", "kl_in_reward"],
        metadata={"help": "Objectives to fine-tune with."},
    )
    seeds: list[int] = field(default_factory=lambda: [0], metadata={"help": "RL seeds."})
    iterations: int = field(default=10, metadata={"help": "RL iterations per run."})
    kl_beta: float = field(
        default=0.01, metadata={"help": "beta of DPOK and KL-in-reward (rl.beta is DLPO's)."}
    )
    eval_inference_steps: int = field(default=20, metadata={"help": "Denoising steps at evaluation."})
    eval_samples_per_text: int = field(
        default=4,
        metadata={"help": "Samples per held-out transcript at evaluation (the same noise for every model)."},
    )
    eval_seed: int = field(
        default=1234,
        metadata={
            "help": "Seed of the evaluation noise, the same for the pretrained and every fine-tuned model, so "
            "that MOS differences are paired sample by sample."
        },
    )
    n_audio: int = field(
        default=2, metadata={"help": "Audio samples (wav + spectrogram PNG) per evaluation."}
    )
    threads: int = field(default=1, metadata={"help": "torch threads."})

    def __post_init__(self) -> None:
        unknown = sorted(set(self.objectives) - set(OBJECTIVES))
        if unknown:
            raise ValueError(f"run.objectives: unknown {unknown}; choose from {sorted(OBJECTIVES)}")
        if self.eval_samples_per_text < 1:
            raise ValueError(f"run.eval_samples_per_text must be >= 1, got {self.eval_samples_per_text}")


def paired_difference(scores: list[float], base: list[float]) -> tuple[float, float, int]:
    """Mean of the per-sample differences scores - base (the same transcripts and evaluation noise), its standard
    error std(d, ddof=1) / sqrt(n), and n."""
    import numpy as np

    d = np.asarray(scores, dtype=float) - np.asarray(base, dtype=float)
    if len(scores) != len(base) or d.size < 2:
        raise ValueError(
            f"paired difference needs two equal-length score lists of >= 2, got {len(scores)} and {len(base)}"
        )
    return float(d.mean()), float(d.std(ddof=1) / np.sqrt(d.size)), int(d.size)


def _rl_config(
    base: DiffusionRLConfig, run: DLPOTTSRunConfig, objective: str, seed: int, out: Path
) -> DiffusionRLConfig:
    beta = (
        base.beta
        if objective in ("dlpo", "diffusion_only")
        else run.kl_beta
        if objective in ("dpok", "kl_in_reward")
        else 0.0
    )
    return dataclasses.replace(base, objective=objective, seed=seed, beta=beta, output_dir=str(out))


def resolve_data_dir(data_dir: str) -> Path:
    """The corpus folder: our sample for an empty setting; a relative path not found from the working
    directory is looked up in the project's folder (so `data/ljspeech-sample` works from anywhere)."""
    from align.data.samples import sample_root

    if not data_dir:
        return sample_root() / "ljspeech-sample"
    path = Path(data_dir)
    if not path.exists() and not path.is_absolute():
        try:
            beside = sample_root().parent / path
        except FileNotFoundError:
            return path
        if beside.exists():
            return beside
    return path


def migrate_results(out: Path) -> None:
    """A folder written before run records (`results.json` only): its results become the record's stages."""
    old, state = out / RESULTS_FILE, out / STATE_FILE
    if old.is_file() and not state.is_file():
        results = json.loads(old.read_text())
        write_json_atomic(state, {"done": list(results), "results": results})


class DLPOTTSRun:
    """One DLPO TTS experiment in `run.output_dir`; `execute()` runs or resumes every stage. `hooks` carry
    the command's stop request and progress settings; `overwrite` starts the folder over."""

    def __init__(
        self,
        run: DLPOTTSRunConfig,
        model: WaveGrad2Config,
        pretrain: TTSPretrainConfig,
        rl: DiffusionRLConfig,
        hooks: TrainHooks | None = None,
        overwrite: bool = False,
    ):
        self.run, self.model_config, self.pretrain_config, self.rl = run, model, pretrain, rl
        self.hooks = dataclasses.replace(hooks or TrainHooks(), rename={"reward": "mos"})
        self.out = Path(run.output_dir)
        self.results_path = self.out / RESULTS_FILE
        self.state = launch_state()  # reads ACCELERATE_USE_CPU, as every later Accelerator must see it
        if self.state.is_main_process:
            migrate_results(self.out)
        self.state.wait_for_everyone()
        config = config_record({"run": run, "model": model, "pretrain": pretrain, "rl": rl})
        self.record = open_run_record(
            self.out,
            config,
            name=STATE_FILE,
            ignore=neutral_fields(config, extra=("run.objectives", "run.seeds")),
            overwrite=overwrite,
            accelerator=self.state,
        )
        self.results: dict[str, Any] = self.record.data["results"]
        keys = ["ground_truth", "pretrained"] + [f"{o}/seed{s}" for o in run.objectives for s in run.seeds]
        note = resume_note(self.record, keys)
        if note and self.state.is_main_process:
            print(f"[dlpo] {note}", flush=True)

    def _set(self, key: str, value: Any) -> None:
        """Record one result (the record and results.json, atomically, on the main process)."""
        self.record.record(key, value)
        if self.state.is_main_process:
            write_json_atomic(self.results_path, self.results)

    def pretrained_model(self, utterances) -> WaveGrad2:
        if self.run.pretrained:
            return WaveGrad2.from_pretrained(self.run.pretrained)
        if (self.out / "pretrain" / "model" / "model.safetensors").is_file():
            return WaveGrad2.from_pretrained(self.out / "pretrain" / "model")
        torch.manual_seed(self.pretrain_config.seed)
        model = WaveGrad2(self.model_config)
        # every rank of a launch pretrains the same model (no rank waits minutes at a barrier); the main one
        # writes it and its checkpoints
        out = self.out / "pretrain"
        return pretrain(
            model, utterances, self.pretrain_config, out, self.hooks, save=self.state.is_main_process
        )

    def _corpus(self) -> list:
        data_dir = resolve_data_dir(self.run.data_dir)
        try:
            return read_ljspeech(data_dir, self.model_config.sample_rate, self.run.resample)
        except (OSError, ValueError) as err:  # a missing or malformed corpus: the message names file and line
            raise UserError(f"run.data_dir: {err}") from None

    def execute(self) -> dict:
        torch.set_num_threads(self.run.threads)
        utts = self._corpus()
        if len(utts) <= self.run.eval_count:
            raise UserError(
                f"run.data_dir {self.run.data_dir or 'sample'}: {len(utts)} clips, need more than "
                f"run.eval_count={self.run.eval_count}"
            )
        train, held_out = utts[: -self.run.eval_count], utts[-self.run.eval_count :]
        eval_texts = [u.text for u in held_out]
        eval_samples = eval_texts * self.run.eval_samples_per_text
        rate = self.model_config.sample_rate
        mos, asr = make_mos(self.run.mos, rate), make_asr(self.run.asr, rate)
        main = self.state.is_main_process  # under several processes the main one evaluates and records
        if "ground_truth" not in self.results and main:
            wavs = [u.wav for u in held_out]
            self._set(
                "ground_truth",
                {"mos": float(mos(wavs).mean()), "wer": word_error_rate(eval_texts, asr(wavs))},
            )
        pretrained_dir = Path(self.run.pretrained) if self.run.pretrained else self.out / "pretrain" / "model"
        base = self.pretrained_model(train)
        self.state.wait_for_everyone()  # the main process has written the pretrained model

        def evaluate(model: WaveGrad2, key: str) -> dict[str, float]:
            steps, audio = self.run.eval_inference_steps, self.out / "audio" / key
            return evaluate_tts(
                model, eval_samples, mos, asr, steps, self.run.eval_seed, audio, self.run.n_audio
            )

        protocol = {"eval_seed": self.run.eval_seed, "eval_samples": len(eval_samples)}
        if "evaluation" not in self.results:
            self._set("evaluation", protocol)
        elif self.results["evaluation"] != protocol:
            raise UserError(
                f"{self.results_path}: its results were evaluated with {self.results['evaluation']}, this run "
                f"asks for {protocol}; use another run.output_dir (paired differences need one protocol)"
            )
        if "pretrained" not in self.results and main:
            self._set("pretrained", evaluate(base, "pretrained"))
        for objective in self.run.objectives:  # objective-major: a cut-short run has every seed of the first
            for seed in self.run.seeds:
                key = f"{objective}/seed{seed}"
                if key in self.results:
                    continue
                run_dir = self.out / objective / f"seed{seed}"
                model = WaveGrad2.from_pretrained(pretrained_dir)
                trainer = DiffusionRLTrainer(
                    model,
                    model.config.scheduler(),
                    tts_task(model, [u.text for u in train], mos, train),
                    _rl_config(self.rl, self.run, objective, seed, run_dir),
                )
                trainer.train(self.run.iterations, hooks=self.hooks, label=key)
                trained = trainer.accelerator.unwrap_model(trainer.model)
                if main:
                    trained.save_pretrained(run_dir / "model")
                    result = evaluate(trained, key)
                    base_scores = self.results["pretrained"]["mos_scores"]
                    diff, se, _ = paired_difference(result["mos_scores"], base_scores)
                    result.update(mos_diff=diff, mos_diff_se=se)
                    result.update(training_summary(run_dir / "metrics.jsonl"))
                    self._set(key, result)
                self.state.wait_for_everyone()
        if self.state.is_main_process:
            write_text_atomic(self.out / "report.md", report(self.results))
        return self.results


def training_summary(metrics_path: Path, window: int = 3) -> dict[str, float]:
    """Means over the first and last `window` iterations of a run's metrics.jsonl: training reward, KL to the
    pretrained model, diffusion loss on real data, and training samples/s (sampling + reward + update)."""
    import numpy as np

    by_iteration = {}
    for line in Path(metrics_path).read_text().splitlines():
        row = json.loads(line)
        by_iteration[row["iteration"]] = row  # a repeated iteration (killed before its checkpoint): the rerun
    rows = [by_iteration[i] for i in sorted(by_iteration)]

    def mean(key: str, part: list[dict]) -> float:
        vals = [r[key] for r in part if r.get(key) is not None]
        return float(np.mean(vals)) if vals else math.nan

    first, last = rows[:window], rows[-window:]
    return {
        "train_reward_first": mean("reward", first),
        "train_reward_last": mean("reward", last),
        "final_kl": mean("kl", last),
        "diffusion_loss_first": mean("diffusion_loss", first),
        "diffusion_loss_last": mean("diffusion_loss", last),
        "train_samples_per_s": sum(r["samples"] for r in rows) / sum(r["time/iteration_s"] for r in rows),
    }


def summarise(results: dict) -> dict[str, dict[str, tuple[float, float, int]]]:
    """Mean and standard deviation over seeds of each fine-tuned method's scalar metrics."""
    import numpy as np

    out: dict[str, dict[str, tuple[float, float, int]]] = {}
    methods = list(dict.fromkeys(k.split("/")[0] for k in results if "/" in k))
    for m in methods:
        rows = [v for k, v in results.items() if k.startswith(m + "/")]
        out[m] = {}
        for metric, value in rows[0].items():
            if isinstance(value, (int, float)):
                vals = np.array([r.get(metric, math.nan) for r in rows], dtype=float)
                out[m][metric] = (float(np.nanmean(vals)), float(np.nanstd(vals)), len(vals))
    return out


def report(results: dict) -> str:
    """Markdown table: held-out MOS and its paired difference from the pretrained model (per seed: mean ± s.e.
    over the evaluation samples; over seeds: mean ± s.e. of the seeds' differences), WER, training figures."""
    import numpy as np

    s = summarise(results)
    n_eval = results.get("evaluation", {}).get("eval_samples", "?")
    lines = [
        f"| method | MOS (held out) | MOS - pretrained, paired (mean ± s.e. over seeds) | per seed: MOS - pretrained "
        f"± s.e. (n = {n_eval}) | WER | train reward, first 3 -> last 3 iterations | KL at end | diffusion loss "
        "on data, first 3 -> last 3 | train samples/s | seeds |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    if "pretrained" in results:
        p = results["pretrained"]
        lines.append(f"| pretrained | {p['mos']:.3f} | - | - | {p['wer']:.3f} | - | - | - | - | - |")
    for m, r in s.items():
        keys = sorted(k for k in results if k.startswith(m + "/"))
        diffs = [results[k]["mos_diff"] for k in keys if "mos_diff" in results[k]]
        per_seed = ", ".join(
            f"{k.split('/')[1]} {results[k]['mos_diff']:+.3f} ± {results[k]['mos_diff_se']:.3f}"
            for k in keys
            if "mos_diff" in results[k]
        )
        over = (
            f"{np.mean(diffs):+.3f} ± {np.std(diffs, ddof=1) / np.sqrt(len(diffs)):.3f}"
            if len(diffs) > 1
            else f"{diffs[0]:+.3f}"
            if diffs
            else "-"
        )

        def pair(a: str, b: str, r: dict = r) -> str:
            return f"{r[a][0]:.3f} -> {r[b][0]:.3f}" if a in r and b in r else "-"

        kl = f"{r['final_kl'][0]:.4f}" if "final_kl" in r else "-"
        speed = f"{r['train_samples_per_s'][0]:.2f}" if "train_samples_per_s" in r else "-"
        lines.append(
            f"| {m} | {r['mos'][0]:.3f} ± {r['mos'][1]:.3f} | {over} | {per_seed or '-'} | "
            f"{r['wer'][0]:.3f} ± {r['wer'][1]:.3f} | {pair('train_reward_first', 'train_reward_last')} | {kl} | "
            f"{pair('diffusion_loss_first', 'diffusion_loss_last')} | {speed} | {r['mos'][2]} |"
        )
    if "ground_truth" in results:
        lines.append(
            f"\nGround-truth clips (the eSpeak NG recordings of the held-out transcripts): MOS "
            f"{results['ground_truth']['mos']:.3f}"
            + (f", WER {results['ground_truth']['wer']:.3f}" if "wer" in results["ground_truth"] else "")
        )
    return "\n".join(lines) + "\n"


SECTIONS = {
    "run": DLPOTTSRunConfig,
    "model": WaveGrad2Config,
    "pretrain": TTSPretrainConfig,
    "rl": DiffusionRLConfig,
}
