"""The ARES run report: `report.json` plus `report.md` with a stage table, the RL curve and examples."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from align.ares.layout import RunLayout

COLUMNS = [
    ("teacher_score_mean", "teacher score"),
    ("repeated_sentence_rate", "repeated sent."),
    ("incomplete_rate", "incomplete"),
    ("distinct_2", "distinct-2"),
    ("mean_words", "words"),
]


def _rl_curves(layout: RunLayout, stages: list[str]) -> dict[str, list[dict[str, float]]]:
    curves = {}
    for stage in stages:
        path = layout.ppo_metrics(stage)
        if path.is_file():
            curves[stage] = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return curves


def _plot(out: Path, state: dict[str, Any], curves: dict[str, list[dict[str, float]]]) -> str | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    names = list(state["evals"])
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    axes[0].plot(
        range(len(names)),
        [state["evals"][n]["teacher_score_mean"] for n in names],
        "o-",
        label="teacher score",
    )
    axes[0].plot(
        range(len(names)),
        [state["evals"][n]["repeated_sentence_rate"] for n in names],
        "s--",
        label="repeated",
    )
    axes[0].plot(
        range(len(names)), [state["evals"][n]["incomplete_rate"] for n in names], "^--", label="incomplete"
    )
    axes[0].set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize=7)
    axes[0].set_title("eval split after each stage")
    axes[0].legend(fontsize=7)
    for stage, rows in curves.items():
        axes[1].plot(
            [r["iteration"] + 1 for r in rows],
            [r.get("score_mean", float("nan")) for r in rows],
            "o-",
            label=stage,
        )
    axes[1].set_xlabel("PPO iteration")
    axes[1].set_title("mean sentence score of samples")
    if curves:
        axes[1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "report.png", dpi=100)
    plt.close(fig)
    return "report.png"


def write_ares_report(
    layout: RunLayout, cfg: Any, state: dict[str, Any], stages: list[str], cache_stats: dict
) -> dict[str, Any]:
    out = layout.root
    curves = _rl_curves(layout, stages)
    report = {
        "config": asdict(cfg),
        "stages": stages,
        "done": state["done"],
        "evals": state["evals"],
        "rl": curves,
        "failed_corrections": state.get("failed_corrections", {}),
        "teacher_cache": cache_stats,
    }
    (out / "report.json").write_text(json.dumps(report, indent=1, default=str))
    lines = [
        f"# ARES run: {cfg.dataset}, teacher `{cfg.teacher}`",
        "",
        f"Model: `{cfg.model or 'tiny offline VLM'}`; rounds: {cfg.rounds}; stages done: {len(state['done'])}/{len(stages)}.",
        "",
        f"## Rationales on the `{cfg.eval_split}` split after each stage (greedy decoding)",
        "",
        "| stage | " + " | ".join(label for _, label in COLUMNS) + " |",
        "|---" * (len(COLUMNS) + 1) + "|",
    ]
    for name, ev in state["evals"].items():
        lines.append(f"| {name} | " + " | ".join(f"{ev[key]:.3f}" for key, _ in COLUMNS) + " |")
    for stage, rows in curves.items():
        lines += [
            "",
            f"## {stage}: PPO",
            "",
            "| iteration | sentence score | reward | KL | explained var. | dropped |",
            "|---|---|---|---|---|---|",
        ]
        lines += [
            f"| {int(r['iteration']) + 1} | {r.get('score_mean', float('nan')):.3f} | {r.get('reward', float('nan')):.3f} "
            f"| {r.get('kl', float('nan')):.4f} | {r.get('explained_variance', float('nan')):.3f} "
            f"| {int(r.get('dropped_samples', 0))} |"
            for r in rows
        ]
    last = state["evals"][list(state["evals"])[-1]]
    lines += [
        "",
        "## Example rationales (last stage), one row per sentence",
        "",
        "| problem | sentence | score |",
        "|---|---|---|",
    ]
    for ex in last.get("examples", []):
        for k, sentence in enumerate(ex["sentences"] or ["(empty)"]):
            score = ex["scores"][k] if ex["scores"] and k < len(ex["scores"]) else "-"
            lines.append(f"| {ex['id'] if k == 0 else ''} | {sentence.replace('|', '/')} | {score} |")
    plot = _plot(out, state, curves)
    if plot:
        lines += ["", f"![stages]({plot})"]
    lines += [
        "",
        f"Teacher cache: {cache_stats.get('total', 0)} entries; {json.dumps(cache_stats.get('tasks', {}))}",
    ]
    (out / "report.md").write_text("\n".join(lines) + "\n")
    return report
