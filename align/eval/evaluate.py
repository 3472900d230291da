"""Evaluate rationale models: answer accuracy (overall and by group), judge win rate against the first model,
rationale quality, and quality across the stages of an ARES run; writes report.json, report.md and PNGs.

The output folder's `run_state.json` (a `RunRecord`) records the config at the first start and each model's
results as it finishes: a rerun with the same config resumes after the last finished model, one with another
config is refused (`overwrite` starts over)."""

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
from align.recipe_config import config_record, neutral_fields
from align.run_folder import open_run_record, resume_note
from align.run_state import write_json_atomic
from align.stopping import StopRequested
from align.train_hooks import TrainHooks
from align.user_errors import UserError
from teacher import CachedTeacher, FeedbackCache, make_teacher
from teacher.names import spec_problem

STATE_FILE = "run_state.json"
JUDGE_CACHE_FILES = ("judge.sqlite", "judge.sqlite-wal", "judge.sqlite-shm")


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

    def __post_init__(self) -> None:
        if problem := spec_problem(self.judge):
            raise ValueError(f"eval.judge: {problem}")


def parse_models(spec: str) -> list[tuple[str, str]]:
    out = []
    for part in filter(None, (p.strip() for p in spec.split(","))):
        name, sep, path = part.partition("=")
        if not sep:
            raise UserError(f"eval.models: expected name=path, got {part!r}")
        if not Path(path).exists() and "/" in path and path.startswith(("runs/", ".", "/")):
            raise UserError(
                f"model {name!r} not found at {path}; run the ARES demo first "
                "(python recipes/ares_scienceqa.py) or pass --set eval.models=name=path,..."
            )
        out.append((name, path))
    if not out:
        raise UserError("eval.models: name at least one rationale model")
    return out


def _evaluate_model(cfg: EvalConfig, name: str, path: str, problems: list, answer_policy: Any) -> dict:
    """One rationale model's accuracy (by group), rationale quality and rationales."""
    policy = load_policy(path, dtype="float32")
    run = two_stage(policy, answer_policy or policy, problems, cfg.rationale_tokens, cfg.answer_tokens)
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
    return {"entry": entry, "rationales": run.rationales}


def evaluate(cfg: EvalConfig, hooks: TrainHooks | None = None, overwrite: bool = False) -> dict[str, Any]:
    """Evaluate every model of `cfg.models` (resuming after the last one finished), then the judge's win
    rates against the first; a stop request takes effect after the model being evaluated."""
    hooks = hooks or TrainHooks()
    models = parse_models(cfg.models)
    out = Path(cfg.output_dir)
    config = config_record({"eval": cfg})
    record = open_run_record(
        out,
        config,
        name=STATE_FILE,
        ignore=neutral_fields(config),
        overwrite=overwrite,
        keep=JUDGE_CACHE_FILES,  # judgments are keyed by their full request: valid for any config, and paid for
    )
    note = resume_note(record, [f"model/{name}" for name, _ in models])
    if note:
        print(f"[evaluate] {note}", flush=True)
    problems = load_problems(cfg.dataset, cfg.split, cfg.data_root, cfg.image_root, cfg.max_problems)
    out.mkdir(parents=True, exist_ok=True)
    answer_policy = load_policy(cfg.answer_model, dtype="float32") if cfg.answer_model else None
    results: dict[str, Any] = {"config": asdict(cfg), "models": {}}
    rationales: dict[str, list[str]] = {}
    for k, (name, path) in enumerate(models):
        stage = f"model/{name}"
        if not record.done(stage):
            if hooks.stop_requested():
                raise StopRequested(k, len(models), "model")
            record.record(stage, _evaluate_model(cfg, name, path, problems, answer_policy))
            print(f"[evaluate] {name}: evaluated ({k + 1} of {len(models)})", flush=True)
        results["models"][name] = record.result(stage)["entry"]
        rationales[name] = record.result(stage)["rationales"]
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
    write_json_atomic(out / "report.json", results)
    from align.eval.report import write_eval_report

    write_eval_report(out, results)
    return results
