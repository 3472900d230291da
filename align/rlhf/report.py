"""The report of an IMDB or TL;DR run: `report.json`, and `report.md` with the supervised stages' held-out
figures, the held-out evaluation per seed with mean and spread, training curves over seeds (`report.png`) and
example samples."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from align.rlhf.metrics import mean_std
from align.rlhf.run import read_metrics, read_samples

EVAL_COLUMNS = [
    ("reward", "reward", "{:.3f}"),
    ("kl", "KL", "{:.3f}"),
    ("kl_k1", "KL k1", "{:.3f}"),
    ("perplexity", "ppl (ref)", "{:.2f}"),
    ("distinct_1", "distinct-1", "{:.3f}"),
    ("distinct_2", "distinct-2", "{:.3f}"),
    ("mean_tokens", "tokens", "{:.1f}"),
]
SUMMARY_COLUMNS = [
    ("rouge1", "ROUGE-1", "{:.3f}"),
    ("rouge2", "ROUGE-2", "{:.3f}"),
    ("rougeL", "ROUGE-L", "{:.3f}"),
    ("win_rate", "win rate vs ref.", "{:.3f}"),
]


def loss_name(ppo: Any) -> str:
    if ppo.policy_loss == "sppo":
        return f"SPPO (alpha {ppo.sppo_alpha:g}, beta {ppo.sppo_beta:g}, Z {ppo.sppo_z:g})"
    return "PPO (clipped surrogate)"


def band(ax: Any, runs: Sequence[Sequence[float]], label: str, x: Sequence[float] | None = None) -> None:
    """Mean line with a mean +- standard deviation band over runs (cut to the shortest run)."""
    import numpy as np

    runs = [list(r) for r in runs if len(r)]
    if not runs:
        return
    n = min(len(r) for r in runs)
    data = np.array([r[:n] for r in runs], dtype=float)
    xs = np.arange(1, n + 1) if x is None else np.asarray(x[:n])
    mean = data.mean(0)
    line = ax.plot(xs, mean, label=f"{label} (n={len(runs)})")[0]
    if len(runs) > 1:
        std = data.std(0, ddof=1)
        ax.fill_between(xs, mean - std, mean + std, color=line.get_color(), alpha=0.2)


def training_curves(root: Path, seeds: Sequence[int]) -> dict[int, list[dict[str, float]]]:
    return {s: read_metrics(root / f"seed{s}" / "ppo" / "metrics.jsonl") for s in seeds}


def plot_training(path: Path, curves: dict[str, dict[int, list[dict[str, float]]]]) -> str | None:
    """Reward and KL per PPO iteration, one band per run (mean +- std over its seeds)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for name, per_seed in curves.items():
        rows = [r for r in per_seed.values() if r]
        band(axes[0], [[m.get("reward", float("nan")) for m in r] for r in rows], name)
        band(axes[1], [[m.get("kl", float("nan")) for m in r] for r in rows], name)
    axes[0].set_title("mean reward of the iteration's samples")
    axes[1].set_title("KL to the reference per sample (k1)")
    for ax in axes:
        ax.set_xlabel("PPO iteration")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path.name


def _cell(value: Any, fmt: str) -> str:
    return fmt.format(value) if isinstance(value, int | float) else "-"


def eval_table(
    rows: dict[str, dict[str, Any]], seeds: Sequence[int], columns: list[tuple[str, str, str]]
) -> list[str]:
    lines = [
        "| policy | " + " | ".join(label for _, label, _ in columns) + " |",
        "|---" * (len(columns) + 1) + "|",
    ]
    for name, row in rows.items():
        lines.append(f"| {name} | " + " | ".join(_cell(row.get(k), f) for k, _, f in columns) + " |")
    finals = [rows[f"seed {s}"] for s in seeds if f"seed {s}" in rows]
    if finals:
        cells = []
        for key, _, fmt in columns:
            values = [r[key] for r in finals if isinstance(r.get(key), int | float)]
            mean, std = mean_std(values)
            cells.append(f"{fmt.format(mean)} ± {fmt.format(std)}" if values else "-")
        lines.append(f"| mean ± std over {len(finals)} seeds | " + " | ".join(cells) + " |")
    return lines


def supervised_lines(results: dict[str, dict[str, Any]]) -> list[str]:
    lines = []
    if "lm" in results:
        r = results["lm"]
        lines.append(
            f"- language-model stage (TRL SFTTrainer): held-out loss {r['eval_loss_before']:.3f} -> {r['eval_loss_after']:.3f}"
        )
    if "classifier" in results:
        r = results["classifier"]
        lines.append(
            f"- sentiment classifier (transformers Trainer): held-out accuracy {r['accuracy_before']:.3f} -> "
            f"**{r['accuracy']:.3f}** on {r['held_out']} reviews"
        )
    if "sft" in results:
        r = results["sft"]
        lines.append(
            f"- SFT (TRL SFTTrainer): held-out completion loss {r['eval_loss_before']:.3f} -> **{r['eval_loss_after']:.3f}**"
        )
    if "reward_model" in results:
        r = results["reward_model"]
        before = f"{r['accuracy_before']:.3f} -> " if "accuracy_before" in r else ""
        how = "TRL RewardTrainer" if r.get("trained") else "given, checked here"
        lines.append(
            f"- reward model ({how}): held-out pairs ranked chosen over rejected {before}**{r['accuracy']:.3f}** "
            f"({r['pairs']} pairs, mean margin {r['mean_margin']:.2f})"
        )
    return lines


def examples(root: Path, seeds: Sequence[int], k: int = 3) -> list[str]:
    first = root / f"seed{seeds[0]}" / "samples.jsonl"
    initial = root / "stages" / "initial" / "samples.jsonl"
    if not (first.is_file() and initial.is_file()):
        return []
    before, after = read_samples(initial), read_samples(first)
    lines = [
        "",
        f"## Examples (held-out prompts; initial policy vs seed {seeds[0]} after RL)",
        "",
        "| prompt | initial (reward) | after RL (reward) |",
        "|---|---|---|",
    ]
    for b, a in list(zip(before, after, strict=False))[:k]:

        def cell(text: str, limit: int = 300) -> str:
            return text.replace("|", "/").replace("\n", " ")[-limit:]

        lines.append(
            f"| {cell(b['prompt'], 200)} | {cell(b['text'])} ({b['reward']:.2f}) | {cell(a['text'])} ({a['reward']:.2f}) |"
        )
    return lines


def write_report(
    run: Any, task: str, models: dict[str, str], seeds: Sequence[int], iterations: int
) -> dict[str, Any]:
    root, results = run.root, run.state.data["results"]
    ppo = run.ppo
    rows = {"initial": results["initial"]} if "initial" in results else {}
    rows.update({f"seed {s}": results[f"seed{s}"] for s in seeds if f"seed{s}" in results})
    columns = EVAL_COLUMNS + (SUMMARY_COLUMNS if run.with_rouge else [])
    curves = training_curves(root, seeds)
    plot = plot_training(root / "report.png", {loss_name(ppo): curves})
    samples = ppo.prompts_per_iteration * ppo.sampling.num_samples
    lines = [
        f"# {task}: {loss_name(ppo)}",
        "",
        f"Seeds {', '.join(map(str, seeds))}; {iterations} PPO iterations per seed, {samples} samples each "
        f"({ppo.prompts_per_iteration} prompts x {ppo.sampling.num_samples}), {ppo.sampling.max_new_tokens} new tokens, "
        f"top-k {ppo.sampling.top_k}; {ppo.ppo_epochs} epochs, minibatch {ppo.minibatch_size}, lr {ppo.learning_rate:g}, "
        f"gamma {ppo.gamma:g}, lambda {ppo.lam:g}, vf {ppo.vf_coef:g}, clip {ppo.clip_range:g}, KL {ppo.kl_coef:g} "
        f"({'adaptive' if ppo.adaptive_kl_target else 'fixed'}). Seeds done: {sum(f'seed{s}' in results for s in seeds)}/{len(seeds)}.",
        "",
        "| | |",
        "|---|---|",
        *[f"| {k} | {v} |" for k, v in models.items()],
        "",
        "## Supervised stages (held-out figures)",
        "",
        *(supervised_lines(results) or ["- none (all models given)"]),
        "",
        f"## Held-out evaluation ({rows['initial']['n'] if 'initial' in rows else '?'} prompts, "
        f"{'sampled' if run.eval_settings.do_sample else 'greedy'})",
        "",
        "Reward: the reward model's score; KL: to the reference per sample, the exact per-step KL over the "
        "vocabulary summed over the response (k1: log-ratio of the generated tokens, the PPO penalty's "
        "estimator); ppl: perplexity of the samples under the reference.",
        "",
        *eval_table(rows, seeds, columns),
    ]
    if plot:
        lines += ["", "## Training curves (mean ± std over seeds)", "", f"![training curves]({plot})"]
    lines += examples(root, seeds)
    (root / "report.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = {
        "task": task,
        "models": models,
        "ppo": asdict(ppo),
        "seeds": list(seeds),
        "iterations": iterations,
        "results": results,
        "curves": {str(s): rows_ for s, rows_ in curves.items()},
    }
    (root / "report.json").write_text(json.dumps(report, indent=1, default=str), encoding="utf-8")
    return report
