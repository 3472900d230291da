"""Markdown + PNG report of an evaluation (`align.eval.evaluate`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

QUALITY = [
    ("repeated_sentence_rate", "repeated sent."),
    ("repeated_trigram_rate", "repeated 3-grams"),
    ("incomplete_rate", "incomplete"),
    ("distinct_2", "distinct-2"),
    ("mean_words", "words"),
]


def _plots(out: Path, results: dict[str, Any]) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = []
    models = results["models"]
    groups = [g for g in next(iter(models.values()))["accuracy"]]
    fig, ax = plt.subplots(figsize=(max(5, 1.1 * len(groups)), 3.5))
    width = 0.8 / len(models)
    for k, (name, entry) in enumerate(models.items()):
        bars = ax.bar(
            [i + k * width for i in range(len(groups))],
            [100 * entry["accuracy"][g]["accuracy"] for g in groups],
            width,
            label=name,
        )
        ax.bar_label(bars, fmt="%.0f", fontsize=7)  # a 0% bar is visible as "0", not mistaken for missing
    ax.set_xticks([i + width * (len(models) - 1) / 2 for i in range(len(groups))], groups)
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 100)
    ax.set_title("answer accuracy by group")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "accuracy.png", dpi=100)
    plt.close(fig)
    files.append("accuracy.png")
    if results["win_rates"]:
        fig, ax = plt.subplots(figsize=(5, 0.6 + 0.6 * len(results["win_rates"])))
        for k, wr in enumerate(results["win_rates"].values()):
            ax.errorbar(
                [100 * wr["win_rate"]],
                [k],
                xerr=[[100 * (wr["win_rate"] - wr["ci_low"])], [100 * (wr["ci_high"] - wr["win_rate"])]],
                fmt="o",
                capsize=4,
            )
        ax.axvline(50, color="gray", linestyle="--")
        ax.set_yticks(range(len(results["win_rates"])), list(results["win_rates"]))
        ax.set_xlim(0, 100)
        ax.set_xlabel("win rate (%), ties as half, 95% bootstrap CI")
        fig.tight_layout()
        fig.savefig(out / "winrate.png", dpi=100)
        plt.close(fig)
        files.append("winrate.png")
    stages = results.get("ares_stages")
    if stages:
        fig, ax = plt.subplots(figsize=(6, 3.5))
        names = list(stages)
        for key, label in QUALITY[:3] + [("teacher_score_mean", "teacher score")]:
            ax.plot(range(len(names)), [stages[n].get(key, float("nan")) for n in names], "o-", label=label)
        ax.set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize=8)
        ax.set_title("rationale quality across ARES stages")
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(out / "stages.png", dpi=100)
        plt.close(fig)
        files.append("stages.png")
    return files


def write_eval_report(out: Path, results: dict[str, Any]) -> None:
    cfg = results["config"]
    models = results["models"]
    groups = list(next(iter(models.values()))["accuracy"])
    lines = [
        f"# Evaluation: {cfg['dataset']} `{cfg['split']}`",
        "",
        f"Judge: `{cfg['judge']}`. Answer model: `{cfg['answer_model'] or 'each model answers itself'}`.",
        "",
        "## Answer accuracy (%)",
        "",
        "| model | " + " | ".join(groups) + " |",
        "|---" * (len(groups) + 1) + "|",
    ]
    for name, entry in models.items():
        lines.append(
            f"| {name} | "
            + " | ".join(
                f"{100 * entry['accuracy'][g]['accuracy']:.1f} (n={entry['accuracy'][g]['n']})"
                for g in groups
            )
            + " |"
        )
    if any("direct_answer_accuracy" in e for e in models.values()):
        lines += [
            "",
            "Direct-answer accuracy: "
            + ", ".join(f"{n} {100 * e['direct_answer_accuracy']:.1f}%" for n, e in models.items()),
        ]
    lines += [
        "",
        "## Judge win rate (both orders; disagreement counts as a tie)",
        "",
        "| pair | win rate | 95% CI | wins / ties / losses | failed | position bias | first-position preference |",
        "|---|---|---|---|---|---|---|",
    ]
    for pair, wr in results["win_rates"].items():
        lines.append(
            f"| {pair} | {100 * wr['win_rate']:.1f}% | {100 * wr['ci_low']:.1f}-{100 * wr['ci_high']:.1f}% "
            f"| {wr['wins']} / {wr['ties']} / {wr['losses']} | {wr['failed']} | {100 * wr['position_bias_rate']:.0f}% "
            f"| {100 * wr['first_position_preference']:.0f}% |"
        )
    lines += [
        "",
        "## Rationale quality",
        "",
        "| model | " + " | ".join(label for _, label in QUALITY) + " |",
        "|---" * (len(QUALITY) + 1) + "|",
    ]
    for name, entry in models.items():
        lines.append(f"| {name} | " + " | ".join(f"{entry['quality'][k]:.3f}" for k, _ in QUALITY) + " |")
    for name, entry in models.items():
        lines += ["", f"### Examples: {name}", ""]
        lines += [
            f"- `{ex['id']}`: {ex['rationale'][:300]!r} -> {ex['answer']!r}" for ex in entry["examples"]
        ]
    for f in _plots(out, results):
        lines += ["", f"![{f}]({f})"]
    (out / "report.md").write_text("\n".join(lines) + "\n")
