"""Compare finished RLHF runs (PPO vs SPPO): held-out figures with mean and spread over seeds, Welch 95%
intervals of each difference to the first run, training curves, and for summaries the judge's head-to-head
win rate (the paper's headline TL;DR figure: GPT-4 prefers SPPO's summaries to PPO's about 52.5% of the time).

    python recipes/sppo_compare.py --runs ppo=runs/tldr-ppo,sppo=runs/tldr-sppo --judge openai:gpt-4o
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from align.rlhf.metrics import mean_std
from align.rlhf.records import RLPrompt
from align.rlhf.report import EVAL_COLUMNS, SUMMARY_COLUMNS, plot_training, training_curves
from align.rlhf.run import read_samples


def welch_interval(a: Sequence[float], b: Sequence[float], level: float = 0.95) -> tuple[float, float, float]:
    """mean(a) - mean(b) and its Welch t interval (unequal variances); NaN bounds with fewer than 2 values
    on a side."""
    from scipy import stats

    diff = sum(a) / len(a) - sum(b) / len(b)
    if len(a) < 2 or len(b) < 2:
        return diff, float("nan"), float("nan")
    va = sum((x - sum(a) / len(a)) ** 2 for x in a) / (len(a) - 1) / len(a)
    vb = sum((x - sum(b) / len(b)) ** 2 for x in b) / (len(b) - 1) / len(b)
    se = math.sqrt(va + vb)
    if se == 0:
        return diff, diff, diff
    dof = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    half = float(stats.t.ppf(0.5 + level / 2, dof)) * se
    return diff, diff - half, diff + half


def load_run(root: Path) -> dict[str, Any]:
    """A run folder's seeds, their held-out results and the policy loss."""
    state = json.loads((root / "rlhf_state.json").read_text())
    results = state["results"]
    seeds = sorted(int(k[4:]) for k in results if k.startswith("seed"))
    return {"root": root, "results": results, "seeds": seeds}


def head_to_head(
    judge: Any, runs: dict[str, dict[str, Any]], a: str, b: str, seed: int = 0
) -> dict[str, Any]:
    """Win rate of run `b`'s held-out samples over run `a`'s, pairing the same prompt under the same seed."""
    from align.eval.winrate import judge_win_rate

    prompts, texts_a, texts_b = [], [], []
    for s in sorted(set(runs[a]["seeds"]) & set(runs[b]["seeds"])):
        sa = {r["id"]: r for r in read_samples(runs[a]["root"] / f"seed{s}" / "samples.jsonl")}
        for r in read_samples(runs[b]["root"] / f"seed{s}" / "samples.jsonl"):
            if r["id"] in sa:
                prompts.append(RLPrompt(f"seed{s}/{r['id']}", r["prompt"]))
                texts_b.append(r["text"].strip())
                texts_a.append(sa[r["id"]]["text"].strip())
    if not prompts:
        raise ValueError(f"runs {a!r} and {b!r} share no seed with held-out samples of the same prompts")
    wr = judge_win_rate(judge, prompts, texts_b, texts_a, seed=seed)
    return {k: v for k, v in wr.to_dict().items() if k != "pairs"}


def compare_runs(runs: dict[str, Path], out: Path, judge: Any = None) -> dict[str, Any]:
    """Write `comparison.md`, `comparison.json` and `comparison.png` to `out`; the first run is the baseline."""
    out.mkdir(parents=True, exist_ok=True)
    loaded = {name: load_run(Path(path)) for name, path in runs.items()}
    names = list(loaded)
    columns = EVAL_COLUMNS + [
        c
        for c in SUMMARY_COLUMNS
        if any("rouge1" in r["results"].get(f"seed{s}", {}) for r in loaded.values() for s in r["seeds"])
    ]

    def values(name: str, key: str) -> list[float]:
        run = loaded[name]
        return [
            run["results"][f"seed{s}"][key]
            for s in run["seeds"]
            if isinstance(run["results"][f"seed{s}"].get(key), int | float)
        ]

    table = {name: {key: mean_std(values(name, key)) for key, _, _ in columns} for name in names}
    lines = [
        "# RLHF runs compared",
        "",
        "Held-out evaluation after RL, mean ± std over each run's seeds; differences to "
        f"`{names[0]}` with Welch 95% intervals (an interval containing 0 is no difference at this many seeds).",
        "",
        "| run | seeds | " + " | ".join(label for _, label, _ in columns) + " |",
        "|---" * (len(columns) + 2) + "|",
    ]
    for name in names:
        cells = [
            f"{fmt.format(table[name][k][0])} ± {fmt.format(table[name][k][1])}" for k, _, fmt in columns
        ]
        lines.append(f"| {name} | {len(loaded[name]['seeds'])} | " + " | ".join(cells) + " |")
    diffs: dict[str, dict[str, list[float]]] = {}
    for name in names[1:]:
        diffs[name] = {}
        cells = []
        for key, _, fmt in columns:
            a, b = values(name, key), values(names[0], key)
            if a and b:
                d, lo, hi = welch_interval(a, b)
                diffs[name][key] = [d, lo, hi]
                cells.append(f"{fmt.format(d)} [{fmt.format(lo)}, {fmt.format(hi)}]")
            else:
                cells.append("-")
        lines.append(f"| {name} - {names[0]} | | " + " | ".join(cells) + " |")
    result: dict[str, Any] = {
        "runs": {n: str(p) for n, p in runs.items()},
        "table": table,
        "differences": diffs,
    }
    if judge is not None:
        result["head_to_head"] = {}
        lines += [
            "",
            f"## Judge head to head (`{judge.model}`), both orders, ties as half",
            "",
            "| pair | win rate | 95% CI | wins / ties / losses | pairs |",
            "|---|---|---|---|---|",
        ]
        for name in names[1:]:
            h = head_to_head(judge, loaded, names[0], name)
            result["head_to_head"][f"{name} vs {names[0]}"] = h
            lines.append(
                f"| {name} over {names[0]} | {h['win_rate']:.3f} | [{h['ci_low']:.3f}, {h['ci_high']:.3f}] | "
                f"{h['wins']} / {h['ties']} / {h['losses']} | {h['n']} |"
            )
    curves = {name: training_curves(r["root"], r["seeds"]) for name, r in loaded.items()}
    plot = plot_training(out / "comparison.png", curves)
    if plot:
        lines += ["", f"![training curves]({plot})"]
    (out / "comparison.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (out / "comparison.json").write_text(json.dumps(result, indent=1), encoding="utf-8")
    return result
