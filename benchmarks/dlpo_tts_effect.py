"""DLPO vs its diffusion-loss-only control with a well-conditioned update, on the CPU demo's TTS model pretrained
further, over seeds: does the reward term add MOS beyond the seed spread?

Three phases, each resumable (rerun to continue; finished parts are kept):
1. pretrain: the demo's model (recipes/configs/dlpo_tts_demo.yaml, pretraining seed 0) trained on, with a copy
   kept at every step count of `--stages` (1000 is the demo's own model);
2. stages: each copy's diffusion loss on the held-out clips (fixed timesteps and noise) and its held-out MOS / WER
   with the evaluation noise every model shares (paired with the first stage): is the demo model under-trained?
3. rl: `dlpo` and `diffusion_only` from the `--rl-from` stage, `--seeds`, through the recipe's own experiment
   (`align.diffusion.tts_run.DLPOTTSRun`), with the per-prompt baseline and `--prompts x --samples-per-prompt`
   trajectories per optimizer step (one step per iteration, gradient accumulated over micro-batches).
The report gives t-intervals over seeds of each model's paired MOS change from the starting model and of DLPO
minus `diffusion_only` (paired by seed: the same prompts, noise and real-data batches).

    OMP_NUM_THREADS=1 nice -n 19 python benchmarks/dlpo_tts_effect.py                     # everything, resumable
    OMP_NUM_THREADS=1 nice -n 19 python benchmarks/dlpo_tts_effect.py --phase stages      # one phase
    python benchmarks/dlpo_tts_effect.py --phase report                                    # tables from results
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from seed_stats import paired_interval, t_interval  # noqa: E402

PHASES = ("pretrain", "stages", "rl", "report")
TRAINING_FIGURES = ("train_reward_first", "train_reward_last", "diffusion_loss_first", "diffusion_loss_last")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--phase", default="all", choices=("all", *PHASES), help="Run one phase, or all in order.")
    p.add_argument("--root", default="runs/bench-dlpo-effect", help="Run folder (resumable).")
    p.add_argument("--out", default="benchmarks/results/dlpo_effect", help="Table, figures, sample WAVs.")
    p.add_argument("--stages", default="1000,2000", help="Pretraining step counts to keep and evaluate.")
    p.add_argument(
        "--anneal",
        default="500:2e-4",
        help="STEPS:LR: after the last stage, train on at this lower learning rate (fresh Adam) as one more "
        "stage ('' for none); the demo's constant learning rate leaves the loss on a plateau.",
    )
    p.add_argument("--rl-from", default=None, help="Stage name the RL runs start from (default: the last).")
    p.add_argument("--seeds", default="0,1,2,3", help="RL seeds.")
    p.add_argument("--objectives", default="dlpo,diffusion_only")
    p.add_argument("--iterations", type=int, default=48, help="RL iterations (one optimizer step each).")
    p.add_argument("--prompts", type=int, default=16, help="Distinct prompts per iteration.")
    p.add_argument("--samples-per-prompt", type=int, default=4, help="Trajectories per prompt per iteration.")
    p.add_argument("--micro-batch", type=int, default=16, help="Trajectories per backward pass.")
    p.add_argument("--eval-samples-per-text", type=int, default=8, help="Evaluation samples per transcript.")
    p.add_argument(
        "--set", action="append", default=[], metavar="SECTION.FIELD=VALUE", help="Config override."
    )
    p.add_argument(
        "--merge-roots",
        default="",
        help="report: other roots (a,b,...) whose RL runs join this root's in the tables and the reward plot, e.g. "
        "one root per process run side by side; they must start from the same model (its evaluation scores "
        "must match) and add seeds, not repeat them.",
    )
    args = p.parse_args(argv)
    per_step = args.prompts * args.samples_per_prompt
    if per_step % args.micro_batch:
        p.error(f"--micro-batch {args.micro_batch} must divide prompts x samples-per-prompt = {per_step}")
    try:
        args.stage_list = sorted(int(s) for s in args.stages.split(","))
        args.seed_list = [int(s) for s in args.seeds.split(",")]
    except ValueError:
        p.error("--stages and --seeds take comma-separated integers")
    args.anneal_steps, args.anneal_lr = 0, 0.0
    if args.anneal:
        steps, _, lr = args.anneal.partition(":")
        try:
            args.anneal_steps, args.anneal_lr = int(steps), float(lr)
        except ValueError:
            p.error(f"--anneal takes STEPS:LR (e.g. 500:2e-4), got {args.anneal!r}")
    args.merge_root_list = [r for r in args.merge_roots.split(",") if r]
    args.stage_names = stage_names(args)
    args.rl_from = args.rl_from or args.stage_names[-1]
    if args.rl_from.isdigit():
        args.rl_from = f"step{args.rl_from}"
    if args.rl_from not in args.stage_names:
        p.error(f"--rl-from {args.rl_from} is not one of the stages {args.stage_names}")
    return args


def stage_names(args: argparse.Namespace) -> list[str]:
    """`step<N>` per pretraining stage, then `step<last>+anneal<steps>` when annealing."""
    names = [f"step{n}" for n in args.stage_list]
    return names + ([f"{names[-1]}+anneal{args.anneal_steps}"] if args.anneal_steps else [])


def load_config(args: argparse.Namespace) -> dict:
    from align.diffusion.tts_run import SECTIONS
    from align.recipe_config import load_sections

    per_step = args.prompts * args.samples_per_prompt
    overrides = [
        f"run.output_dir={Path(args.root) / 'rl'}",
        f"run.pretrained={stage_dir(args, args.rl_from)}",
        f"run.objectives={args.objectives}",
        f"run.seeds={args.seeds}",
        f"run.iterations={args.iterations}",
        f"run.eval_samples_per_text={args.eval_samples_per_text}",
        "run.n_audio=4",
        f"rl.prompts_per_iteration={args.prompts}",
        f"rl.samples_per_prompt={args.samples_per_prompt}",
        "rl.reward_normalisation=per_prompt",
        "rl.min_train_step_std=0.01",
        f"rl.sampling_batch_size={min(per_step, 32)}",
        f"rl.minibatch_size={args.micro_batch}",
        f"rl.gradient_accumulation_steps={per_step // args.micro_batch}",
        *args.set,
    ]
    return load_sections("dlpo_tts_demo", SECTIONS, overrides, HERE.parent / "recipes" / "configs")


def stage_dir(args: argparse.Namespace, name: str) -> Path:
    return Path(args.root) / "pretrain" / name


def run_pretrain(args: argparse.Namespace, cfg: dict) -> None:
    """Pretrain (resuming) to each stage in turn, keeping a copy of the model at each; then the anneal stage: the
    last stage trained on at the lower learning rate with a fresh Adam (other pretraining seed for its batches)."""
    import dataclasses

    import torch

    from align.diffusion.speech.ljspeech import read_ljspeech
    from align.diffusion.speech.wavegrad2 import WaveGrad2
    from align.diffusion.tts import pretrain

    run, pre = cfg["run"], cfg["pretrain"]
    torch.set_num_threads(run.threads)
    utts = read_ljspeech(run.data_dir, cfg["model"].sample_rate, run.resample)[: -run.eval_count]
    work = Path(args.root) / "pretrain" / "work"
    for steps, name in zip(args.stage_list, args.stage_names, strict=False):
        target = stage_dir(args, name)
        if (target / "model.safetensors").is_file():
            continue
        torch.manual_seed(pre.seed)  # the demo's initialisation (DLPOTTSRun.pretrained_model)
        model = pretrain(WaveGrad2(cfg["model"]), utts, dataclasses.replace(pre, steps=steps), work)
        model.save_pretrained(target)
        print(f"[pretrain] {name}: saved {target}", flush=True)
    if args.anneal_steps and not (stage_dir(args, args.stage_names[-1]) / "model.safetensors").is_file():
        anneal = dataclasses.replace(
            pre, steps=args.anneal_steps, learning_rate=args.anneal_lr, seed=pre.seed + 1
        )
        model = WaveGrad2.from_pretrained(stage_dir(args, args.stage_names[-2]))
        model = pretrain(model, utts, anneal, Path(args.root) / "pretrain" / "anneal-work")
        model.save_pretrained(stage_dir(args, args.stage_names[-1]))
        print(f"[pretrain] {args.stage_names[-1]}: saved", flush=True)


def held_out_diffusion_loss(model, utterances, kind: str, draws: int = 32, seed: int = 0) -> float:
    """Mean noise-prediction loss of `model` on `utterances` over `draws` fixed (timestep, noise) draws each."""
    import torch

    from align.diffusion.steps import noise_prediction_loss, training_target
    from align.diffusion.tts import data_batch

    scheduler = model.config.scheduler()
    model.eval()
    g = torch.Generator().manual_seed(seed)
    losses = []
    with torch.no_grad():
        x0, cond = data_batch(model, utterances)
        for _ in range(draws):
            t = torch.randint(scheduler.config.num_train_timesteps, (len(x0),), generator=g)
            noise = torch.randn(x0.shape, generator=g)
            pred = model(scheduler.add_noise(x0, noise, t), t, cond)
            losses.append(float(noise_prediction_loss(pred, training_target(scheduler, x0, noise, t), kind)))
    return float(sum(losses) / len(losses))


def run_stages(args: argparse.Namespace, cfg: dict) -> dict:
    """Held-out diffusion loss, MOS and WER of every pretraining stage (the same evaluation noise for all)."""
    import torch

    from align.diffusion.speech.ljspeech import read_ljspeech
    from align.diffusion.speech.wavegrad2 import WaveGrad2
    from align.diffusion.speech_metrics import make_asr, make_mos
    from align.diffusion.tts import evaluate_tts
    from align.diffusion.tts_run import paired_difference

    run = cfg["run"]
    torch.set_num_threads(run.threads)
    path = Path(args.root) / "stages.json"
    results = json.loads(path.read_text()) if path.is_file() else {}
    held = read_ljspeech(run.data_dir, cfg["model"].sample_rate, run.resample)[-run.eval_count :]
    texts = [u.text for u in held] * args.eval_samples_per_text
    rate = cfg["model"].sample_rate
    mos, asr = make_mos(run.mos, rate), make_asr(run.asr, rate)
    for key in args.stage_names:
        if key in results or not (stage_dir(args, key) / "model.safetensors").is_file():
            continue
        model = WaveGrad2.from_pretrained(stage_dir(args, key))
        r = evaluate_tts(model, texts, mos, asr, run.eval_inference_steps, run.eval_seed)
        r["held_out_diffusion_loss"] = held_out_diffusion_loss(
            model, held, cfg["pretrain"].diffusion_loss_kind
        )
        results[key] = r
        path.write_text(json.dumps(results, indent=1))
        print(
            f"[stages] {key}: MOS {r['mos']:.3f}, held-out diffusion loss {r['held_out_diffusion_loss']:.4f}"
        )
    first = results.get(args.stage_names[0])
    for r in results.values():
        if first is not None and r is not first:
            r["mos_diff"], r["mos_diff_se"], _ = paired_difference(r["mos_scores"], first["mos_scores"])
    path.write_text(json.dumps(results, indent=1))
    return results


def run_rl(cfg: dict) -> dict:
    from align.diffusion.tts_run import DLPOTTSRun

    return DLPOTTSRun(cfg["run"], cfg["model"], cfg["pretrain"], cfg["rl"]).execute()


def pretrain_curve(log: Path, window: int = 100) -> list[tuple[int, float]]:
    """(last step, mean training diffusion loss) of each `window`-step block of a pretraining log."""
    rows = {}
    if log.is_file():
        for line in log.read_text().splitlines():
            row = json.loads(line)
            rows[row["step"]] = row["diffusion_loss"]  # a resumed block logs its steps again: the last write
    steps = sorted(rows)
    return [
        (steps[i + window - 1], sum(rows[s] for s in steps[i : i + window]) / window)
        for i in range(0, len(steps) - window + 1, window)
    ]


def stage_losses(root: Path, names: list[str], window: int = 100) -> dict[str, float]:
    """Each stage's training diffusion loss over its last `window` steps (from the pretraining logs)."""
    main = dict(pretrain_curve(root / "pretrain" / "work" / "pretrain_log.jsonl", window))
    anneal = pretrain_curve(root / "pretrain" / "anneal-work" / "pretrain_log.jsonl", window)
    out = {n: main[int(n[4:])] for n in names if n[4:].isdigit() and int(n[4:]) in main}
    if anneal and "+anneal" in names[-1]:
        out[names[-1]] = anneal[-1][1]
    return out


def stage_table(stages: dict, names: list[str], losses: dict[str, float]) -> str:
    lines = [
        "| pretraining stage | training diffusion loss (last 100 steps) | held-out diffusion loss | held-out MOS "
        "| MOS - first stage, paired (± s.e.) | WER |",
        "|---|---|---|---|---|---|",
    ]
    for key in [n for n in names if n in stages]:
        r = stages[key]
        diff = f"{r['mos_diff']:+.3f} ± {r['mos_diff_se']:.3f}" if "mos_diff" in r else "-"
        train = f"{losses[key]:.4f}" if key in losses else "-"
        lines.append(
            f"| {key} | {train} | {r['held_out_diffusion_loss']:.4f} | {r['mos']:.3f} | {diff} | {r['wer']:.3f} |"
        )
    return "\n".join(lines)


def rl_table(results: dict, objectives: list[str]) -> str:
    """Per method: the paired MOS change from the starting model per seed and its t-interval over seeds; then
    DLPO - diffusion_only paired by seed; WER and the diffusion loss on data."""
    change = {
        m: {int(k.split("seed")[1]): v["mos_diff"] for k, v in results.items() if k.startswith(f"{m}/")}
        for m in objectives
    }
    lines = [
        "| method | seeds | MOS - starting model, per seed (± s.e. over the evaluation samples) | mean, 95% t-interval "
        "over seeds | WER | train reward, first 3 -> last 3 iterations | diffusion loss on data, first 3 -> last 3 |",
        "|---|---|---|---|---|---|---|",
    ]
    for m in objectives:
        keys = sorted((k for k in results if k.startswith(f"{m}/")), key=lambda k: int(k.split("seed")[1]))
        if not keys:
            continue
        per_seed = ", ".join(f"{results[k]['mos_diff']:+.3f} ± {results[k]['mos_diff_se']:.3f}" for k in keys)
        iv = t_interval([results[k]["mos_diff"] for k in keys])
        wer = t_interval([results[k]["wer"] for k in keys])
        mean = {f: sum(results[k][f] for k in keys) / len(keys) for f in TRAINING_FIGURES}
        lines.append(
            f"| {m} | {len(keys)} | {per_seed} | {_bold(iv, 3)} | {wer.format(3)} | "
            f"{mean['train_reward_first']:.3f} -> {mean['train_reward_last']:.3f} | "
            f"{mean['diffusion_loss_first']:.4f} -> {mean['diffusion_loss_last']:.4f} |"
        )
    if len(objectives) >= 2 and all(change.get(m) for m in objectives[:2]):
        a, b = objectives[:2]
        seeds = sorted(set(change[a]) & set(change[b]))
        diffs = ", ".join(f"{change[a][s] - change[b][s]:+.3f}" for s in seeds)
        iv = paired_interval(change[a], change[b])
        lines.append(f"| {a} - {b} (paired by seed) | {iv.n} | {diffs} | {_bold(iv, 3)} | - | - | - |")
    return "\n".join(lines)


def _bold(iv, digits: int) -> str:
    text = iv.format(digits, signed=True)
    return f"**{text}**" if iv.excludes_zero() else text


def reward_plot(rl_roots: list[Path], objectives: list[str], figure: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(6, 3.2))
    for m in objectives:
        curves = []
        for path in sorted(p for rl_root in rl_roots for p in (rl_root / m).glob("seed*/metrics.jsonl")):
            rows = {}
            for line in path.read_text().splitlines():
                row = json.loads(line)
                rows[row["iteration"]] = row["reward"]
            curves.append([rows[i] for i in sorted(rows)])
        if curves:
            n = min(len(c) for c in curves)
            ax.plot(range(1, n + 1), np.mean([c[:n] for c in curves], 0), label=f"{m} ({len(curves)} seeds)")
    ax.set_xlabel("iteration (one optimizer step each)")
    ax.set_ylabel("training reward (DNSMOS P.808)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(figure, dpi=80)
    plt.close(fig)


def spectrogram_figure(audio_root: Path, keys: list[str], figure: Path, sample: int = 0) -> None:
    """The same transcript and evaluation noise from each model, one spectrogram per row."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import soundfile as sf

    keys = [k for k in keys if (audio_root / k / f"sample{sample}.wav").is_file()]
    if not keys:
        return
    fig, axes = plt.subplots(len(keys), 1, figsize=(6, 1.8 * len(keys)), squeeze=False)
    for ax, key in zip(axes[:, 0], keys, strict=True):
        wav, rate = sf.read(str(audio_root / key / f"sample{sample}.wav"))
        mos = json.loads((audio_root / key / "transcripts.json").read_text())["mos"][sample]
        ax.specgram(wav, NFFT=256, Fs=rate, noverlap=192, cmap="magma")
        ax.set_title(f"{key} (DNSMOS P.808 {mos:.2f})", fontsize=8)
        ax.set_ylabel("Hz", fontsize=7)
    axes[-1, 0].set_xlabel("s")
    fig.tight_layout()
    fig.savefig(figure, dpi=70)
    plt.close(fig)


def same_scores(a: list[float], b: list[float], tolerance: float = 1e-4) -> bool:
    """Whether two evaluations of a starting model agree sample by sample (a model pretrained again on the same
    seed scores within ~1e-7 of the first: float rounding, not another model)."""
    return len(a) == len(b) and all(abs(x - y) <= tolerance for x, y in zip(a, b, strict=True))


def merged_results(root: Path, others: list[Path]) -> dict:
    """`root`'s rl/results.json with the runs of every other root's added; a ValueError names a root that started
    from another model (its starting model's evaluation scores differ) or repeats a run."""
    path = root / "rl" / "results.json"
    results = json.loads(path.read_text()) if path.is_file() else {}
    for other in others:
        other_path = Path(other) / "rl" / "results.json"
        if not other_path.is_file():
            raise ValueError(f"--merge-roots: {other_path} does not exist")
        more = json.loads(other_path.read_text())
        start, other_start = results.get("pretrained"), more.get("pretrained")
        if start and other_start and not same_scores(start["mos_scores"], other_start["mos_scores"]):
            raise ValueError(f"--merge-roots: {other} started from another model than {root}")
        runs = {k: v for k, v in more.items() if "/seed" in k}
        if repeated := sorted(set(runs) & set(results)):
            raise ValueError(f"--merge-roots: {other} repeats {', '.join(repeated)}")
        results = {**more, **results, **runs}
    return results


def write_report(args: argparse.Namespace, cfg: dict, results: dict) -> str:
    """Tables and figures of the stages and of the RL runs `results` (`merged_results`) under `args.out`."""
    root, out = Path(args.root), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    objectives = args.objectives.split(",")
    stages_path = root / "stages.json"
    stages = json.loads(stages_path.read_text()) if stages_path.is_file() else {}
    rl = cfg["rl"]
    parts = [
        f"Pretraining stages (demo model, seed 0; evaluation: {args.eval_samples_per_text} samples x 8 held-out "
        "transcripts, one evaluation noise for every model):",
        stage_table(stages, args.stage_names, stage_losses(root, args.stage_names)),
        f"RL from the {args.rl_from} model: {args.iterations} iterations of {args.prompts} prompts x "
        f"{args.samples_per_prompt} samples ({args.prompts * args.samples_per_prompt} trajectories per optimizer "
        f"step, accumulated over micro-batches of {args.micro_batch}), per-prompt baseline, t = 50 not trained "
        f"(min_train_step_std {rl.min_train_step_std}), alpha {rl.alpha}, beta {rl.beta}, Adam {rl.learning_rate}.",
        rl_table(results, objectives) if results else "(no RL results yet)",
    ]
    if "pretrained" in results:
        p, gt = results["pretrained"], results.get("ground_truth", {})
        parts.append(
            f"Starting model: MOS {p['mos']:.3f}, WER {p['wer']:.3f}. Ground-truth clips: MOS {gt.get('mos', 0):.3f}, "
            f"WER {gt.get('wer', 0):.3f}."
        )
    md = "\n\n".join(parts) + "\n"
    (out / "table.md").write_text(md)
    slim = {
        "stages": stages,
        "rl": {k: v for k, v in results.items()},
        "args": {k: v for k, v in vars(args).items() if k not in ("stage_list", "seed_list", "stage_names")},
    }
    (out / "results.json").write_text(json.dumps(slim, indent=1))
    if results:
        reward_plot(
            [root / "rl", *(Path(r) / "rl" for r in args.merge_root_list)], objectives, out / "reward.png"
        )
        audio = root / "rl" / "audio"
        keys = ["pretrained", *(f"{m}/seed{args.seed_list[0]}" for m in objectives)]
        spectrogram_figure(audio, keys, out / "spectrograms.png")
        for key in keys:  # 4 WAVs per model: the same transcripts and noise
            for wav in sorted((audio / key).glob("sample*.wav"))[:4]:
                target = out / "audio" / key.replace("/", "-")
                target.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(wav, target / wav.name)
            if (audio / key / "transcripts.json").is_file():
                shutil.copyfile(
                    audio / key / "transcripts.json",
                    out / "audio" / key.replace("/", "-") / "transcripts.json",
                )
    return md


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        cfg = load_config(args)
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    phases = PHASES if args.phase == "all" else (args.phase,)
    if "pretrain" in phases:
        run_pretrain(args, cfg)
    if "stages" in phases:
        run_stages(args, cfg)
    if "rl" in phases:
        run_rl(cfg)
    try:
        results = merged_results(Path(args.root), [Path(r) for r in args.merge_root_list])
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(write_report(args, cfg, results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
