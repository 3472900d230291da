"""The ARES run report: `report.json` plus `report.md` with a stage table, the RL curve and examples."""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path
from typing import Any

from align.ares.layout import RunLayout

COLUMNS = [
    ("teacher_score_mean", "teacher score"),
    ("teacher_score_se", "± s.e."),
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
    objective_axis = axes[1].twinx() if curves else None
    for stage, rows in curves.items():
        steps = [r["iteration"] + 1 for r in rows]
        axes[1].plot(steps, [r.get("score_mean", float("nan")) for r in rows], "o-", label=f"{stage} score")
        objective_axis.plot(
            steps, [r.get("reward", float("nan")) for r in rows], "s--", label=f"{stage} objective"
        )
    axes[1].set_xlabel("PPO iteration")
    axes[1].set_ylabel("mean sentence score (o-)")
    axes[1].set_title("samples: mean score and PPO objective")
    if objective_axis is not None:
        objective_axis.set_ylabel("sum of (score - neutral) per sample (s--)")
        axes[1].legend(fontsize=7, loc="upper left")
        objective_axis.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(out / "report.png", dpi=100)
    plt.close(fig)
    return "report.png"


def _num(row: dict[str, float], key: str, digits: int) -> str:
    value = row.get(key)
    return "-" if value is None else f"{value:.{digits}f}"


def _stage_effect(evals: dict[str, dict[str, Any]], stage: str) -> str:
    """One sentence on how a stage moved the eval teacher score, against the noise of the eval split."""
    names = list(evals)
    if stage not in names or names.index(stage) == 0:
        return ""
    before, after = evals[names[names.index(stage) - 1]], evals[stage]
    a, b = before.get("teacher_score_mean"), after.get("teacher_score_mean")
    se_a, se_b = before.get("teacher_score_se"), after.get("teacher_score_se")
    if (
        a is None
        or b is None
        or se_a is None
        or se_b is None
        or any(math.isnan(x) for x in (a, b, se_a, se_b))
    ):
        return ""
    delta, se = b - a, math.hypot(se_a, se_b)
    verdict = "beyond" if abs(delta) > 2 * se else "within"
    n = after.get("eval_problems", "?")
    return (
        f"On the eval split ({n} problems, greedy decoding) this stage moved the teacher score from {a:.3f} "
        f"to {b:.3f} (difference {delta:+.3f}, standard error of the difference about {se:.3f}): {verdict} "
        "two standard errors. Small eval splits (the demo's has 6 problems) cannot show a stage's effect; "
        "the PPO objective on training samples above is the signal the stage optimised."
    )


def write_ares_report(
    layout: RunLayout,
    cfg: Any,
    state: dict[str, Any],
    stages: list[str],
    cache_stats: dict,
    ppo_cfg: Any = None,
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
        lines.append(f"| {name} | " + " | ".join(_num(ev, key, 3) for key, _ in COLUMNS) + " |")
    for stage, rows in curves.items():
        lines += [
            "",
            f"## {stage}: PPO",
            "",
            "The objective PPO maximises is the sum over a sample's sentences of (score - neutral score),",
            "not the mean score: a model can raise it by writing fewer poor sentences while its mean",
            "sentence score falls. KL is per sequence, against the stage's reference model: the estimator",
            f"that enters the reward (`{getattr(ppo_cfg, 'kl_estimator', 'k1')}`; k1 can go negative under top-k",
            "sampling) and k3, which never does.",
            "",
            "| iteration | mean sentence score | objective (sum of score - neutral) | KL (reward estimator) "
            "| KL (k3) | explained variance | dropped |",
            "|---|---|---|---|---|---|---|",
        ]
        lines += [
            f"| {int(r['iteration']) + 1} | {_num(r, 'score_mean', 3)} | {_num(r, 'reward', 3)} "
            f"| {_num(r, 'kl', 4)} | {_num(r, 'kl_k3', 4)} | {_num(r, 'explained_variance', 2)} "
            f"| {int(r.get('dropped_samples', 0))} |"
            for r in rows
        ]
        effect = _stage_effect(state["evals"], stage)
        if effect:
            lines += ["", effect]
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
