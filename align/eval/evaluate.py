"""Evaluate rationale models: answer accuracy (overall and by group), judge win rate against the first model,
rationale quality, and quality across the stages of an ARES run; writes report.json, report.md and PNGs."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from align.data import load_problems
from align.eval.answers import accuracy_by_group, direct_answer_accuracy
from align.eval.inference import two_stage
from align.eval.quality import quality_summary
from align.eval.winrate import judge_win_rate
from align.models import load_policy
from teacher import CachedTeacher, FeedbackCache, make_teacher


@dataclass
class EvalConfig:
    """What to evaluate, against what, with which judge."""

    output_dir: str = field(default="runs/eval-demo", metadata={"help": "Where the report goes."})
    dataset: str = field(default="scienceqa", metadata={"help": "scienceqa or aokvqa."})
    data_root: str = field(default="", metadata={"help": "Dataset folder; empty: our sample data."})
    image_root: str = field(default="", metadata={"help": "Image folder if not under data_root."})
    split: str = field(default="val", metadata={"help": "Split to evaluate."})
    max_problems: int = field(default=0, metadata={"help": "Evaluate at most this many problems (0: all)."})
    models: str = field(
        default="baseline=runs/ares-scienceqa-demo/stages/baseline_sft,ares=runs/ares-scienceqa-demo/stages/round1-sft",
        metadata={
            "help": "Comma-separated name=path rationale models; the first is the reference for win rates."
        },
    )
    answer_model: str = field(
        default="", metadata={"help": "Answer model path; empty: each model answers itself."}
    )
    judge: str = field(
        default="reference", metadata={"help": "Judge spec, e.g. openai:gpt-4o (paper: GPT-4o)."}
    )
    cache: str = field(default="", metadata={"help": "Judge cache; empty: <output_dir>/judge.sqlite."})
    ares_run: str = field(
        default="runs/ares-scienceqa-demo",
        metadata={"help": "ARES run folder for quality across stages ('' to skip)."},
    )
    rationale_tokens: int = field(default=64, metadata={"help": "Maximum rationale length."})
    answer_tokens: int = field(default=16, metadata={"help": "Maximum answer length."})
    seed: int = field(default=0, metadata={"help": "Seed of the bootstrap interval."})


def parse_models(spec: str) -> list[tuple[str, str]]:
    out = []
    for part in filter(None, (p.strip() for p in spec.split(","))):
        name, sep, path = part.partition("=")
        if not sep:
            raise ValueError(f"models: expected name=path, got {part!r}")
        if not Path(path).exists() and "/" in path and path.startswith(("runs/", ".", "/")):
            raise FileNotFoundError(
                f"model {name!r} not found at {path}; run the ARES demo first "
                "(accelerate launch recipes/ares_scienceqa.py) or pass --set eval.models=name=path,..."
            )
        out.append((name, path))
    if not out:
        raise ValueError("models: name at least one rationale model")
    return out


def evaluate(cfg: EvalConfig) -> dict[str, Any]:
    problems = load_problems(cfg.dataset, cfg.split, cfg.data_root, cfg.image_root, cfg.max_problems)
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    answer_policy = load_policy(cfg.answer_model, dtype="float32") if cfg.answer_model else None
    results: dict[str, Any] = {"config": asdict(cfg), "models": {}}
    rationales: dict[str, list[str]] = {}
    for name, path in parse_models(cfg.models):
        policy = load_policy(path, dtype="float32")
        run = two_stage(policy, answer_policy or policy, problems, cfg.rationale_tokens, cfg.answer_tokens)
        rationales[name] = run.rationales
        entry: dict[str, Any] = {
            "path": path,
            "accuracy": accuracy_by_group(problems, run.predictions),
            "quality": quality_summary(run.rationales),
            "examples": [
                {"id": p.id, "rationale": r, "answer": a}
                for p, r, a in list(zip(problems, run.rationales, run.answers, strict=True))[:3]
            ],
        }
        if cfg.dataset == "aokvqa":
            # the direct answer: the chosen option's text, else the answer model's raw text
            texts = [
                p.choices[i] if i is not None else a
                for p, i, a in zip(problems, run.predictions, run.answers, strict=True)
            ]
            da = direct_answer_accuracy(problems, texts)
            entry["direct_answer_accuracy"], entry["direct_answer_n"] = da["accuracy"], da["n"]
        results["models"][name] = entry
        del policy
    judge = CachedTeacher(make_teacher(cfg.judge), FeedbackCache(cfg.cache or out / "judge.sqlite"))
    names = list(rationales)
    results["win_rates"] = {
        f"{name} vs {names[0]}": judge_win_rate(
            judge, problems, rationales[name], rationales[names[0]], seed=cfg.seed
        ).to_dict()
        for name in names[1:]
    }
    if cfg.ares_run and (Path(cfg.ares_run) / "report.json").is_file():
        results["ares_stages"] = json.loads((Path(cfg.ares_run) / "report.json").read_text())["evals"]
    (out / "report.json").write_text(json.dumps(results, indent=1, default=str))
    from align.eval.report import write_eval_report

    write_eval_report(out, results)
    return results
