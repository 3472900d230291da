"""The ARES loop (Byun et al., 2024): rounds of RL with sentence-level teacher feedback, then correction SFT.

Stages, in order: an optional `baseline_sft` on gold rationales (the paper starts from an SFT'd MM-CoT
model), then per round `rl` (PPO, rewards on sentence-final tokens), `correct` (sample rationales, drop
repeated sentences, ask the teacher to correct them) and `sft` (fine-tune on the corrections). After each
stage the model is saved and `ares_state.json` (a `RunRecord`: the run's config, the stages done and each
stage's evaluation) records it, so a stopped or killed run resumes at the first unfinished stage (an RL stage
from its last PPO checkpoint); a later start with another config is refused. Every teacher call goes through
the feedback cache, so nothing is paid for twice.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from align.ares.config import AresConfig
from align.ares.layout import RunLayout
from align.ares.reward import SentenceTeacherReward
from align.data import load_problems, rationale_target
from align.data.jsonl import problem_from_dict, problem_to_dict
from align.data.prompts import ensure_solution_prefix
from align.eval.quality import quality_summary
from align.generate import generate_texts
from align.models import build_tiny_vlm, load_policy
from align.models.loading import LoadedPolicy
from align.recipe_config import config_record, neutral_fields
from align.run_folder import open_run_record, resume_note
from align.run_state import write_json_atomic
from align.stopping import StopRequested
from align.text.sentences import dedupe_sentences, sentence_texts
from align.train_hooks import TrainHooks
from align.trainers.distributed import (
    full_parameters,
    gather_lists,
    generation_weights,
    make_accelerator,
    run_precision,
    shard,
    zero_stage,
)
from align.trainers.ppo import PPOTrainer
from align.trainers.ppo_config import PPOConfig
from align.trainers.sft import SFTConfig, sft_train
from teacher import CachedTeacher, FeedbackCache, make_teacher
from teacher.limits import RetryPolicy


def standard_error(values: list[float]) -> float:
    """Standard error of the mean of `values` (nan for fewer than two)."""
    n = len(values)
    if n < 2:
        return float("nan")
    mean = sum(values) / n
    return (sum((v - mean) ** 2 for v in values) / (n - 1) / n) ** 0.5


def stage_names(cfg: AresConfig, baseline: bool) -> list[str]:
    names = ["baseline_sft"] if baseline else []
    for r in range(1, cfg.rounds + 1):
        names += [f"round{r}/rl", f"round{r}/correct", f"round{r}/sft"]
    return names


def migrate_state(path: Path) -> None:
    """An `ares_state.json` written before run records (`{"done", "evals", "failed_corrections"}`) in the
    record's layout: the evaluations (the initial model's under "initial") become the results."""
    if not path.is_file():
        return
    data = json.loads(path.read_text())
    if not isinstance(data, dict) or "evals" not in data or "config" in data:
        return
    write_json_atomic(path, {**data, "results": data.pop("evals")})


class AresRun:
    """One ARES run in `cfg.output_dir`; `run()` executes (or resumes) every stage and writes the report.

    One `Accelerator` serves every stage (its precision from the launch unless the config sections set one).
    Under several processes each rank samples, and asks the teacher about, its own share of the problems;
    results are gathered and files, state and report are written by the main process only. The folder's
    record refuses a start whose config differs from its first start's (`overwrite` starts over); `hooks`
    carry the command's stop request and progress settings.
    """

    def __init__(
        self,
        cfg: AresConfig,
        ppo: PPOConfig,
        sft: SFTConfig,
        baseline_sft: SFTConfig | None = None,
        accelerator: Any = None,
        hooks: TrainHooks | None = None,
        overwrite: bool = False,
    ):
        self.cfg, self.ppo, self.sft, self.baseline_sft = cfg, ppo, sft, baseline_sft
        self.hooks = hooks or TrainHooks()
        precision = {"ppo": ppo.mixed_precision, "sft": sft.mixed_precision}
        if baseline_sft is not None:
            precision["baseline_sft"] = baseline_sft.mixed_precision
        self.accelerator = accelerator or make_accelerator(run_precision(precision))
        self.main = self.accelerator.is_main_process
        self.layout = RunLayout(Path(cfg.output_dir))
        self.out = self.layout.root
        if self.main:
            migrate_state(self.layout.state)
        self.accelerator.wait_for_everyone()
        sections = {"ares": cfg, "ppo": ppo, "sft": sft, "baseline_sft": baseline_sft}
        config = config_record(sections)
        self.record = open_run_record(
            self.out,
            config,
            name=self.layout.state.name,
            ignore=neutral_fields(config),
            overwrite=overwrite,
            accelerator=self.accelerator,
            # the teacher's answers are keyed by their full request: valid for any config, and paid for
            keep=[self.layout.feedback_cache.name + suffix for suffix in ("", "-wal", "-shm")],
        )
        self.out.mkdir(parents=True, exist_ok=True)
        self.train = self._problems(cfg.train_split, cfg.max_train_problems)
        self.eval = self._problems(cfg.eval_split, cfg.max_eval_problems)
        teacher = make_teacher(cfg.teacher)
        # transient provider errors (429, 5xx, timeouts) are retried with backoff before a sample is dropped
        self.teacher = CachedTeacher(
            teacher, FeedbackCache(cfg.cache or self.layout.feedback_cache), retry=RetryPolicy()
        )
        self.stages = stage_names(cfg, baseline_sft is not None and baseline_sft.epochs > 0)
        note = resume_note(self.record, self.stages)
        if note and self.main:
            print(f"[ares] {note}", flush=True)

    @property
    def state(self) -> dict[str, Any]:
        """The record as the report reads it: stages done, evaluations, failed corrections."""
        data = self.record.data
        return {
            "done": list(data["done"]),
            "evals": data["results"],
            "failed_corrections": data.get("failed_corrections", {}),
        }

    def _problems(self, split: str, limit: int) -> list[Any]:
        c = self.cfg
        return load_problems(c.dataset, split, c.data_root, c.image_root, limit)

    # --- persistence ----------------------------------------------------------------------------------------
    def _record(self, stage: str, result: dict[str, Any]) -> None:
        """Record a stage as done with its evaluation (written by the main process, kept in memory by the
        others). The initial model's evaluation is a result, not a stage."""
        if stage == "initial":
            self.record.data["results"]["initial"] = result
            self.record.save()
        else:
            self.record.record(stage, result)
        self.accelerator.wait_for_everyone()

    def _initial_model(self) -> str:
        if self.cfg.model:
            return self.cfg.model
        path = self.layout.tiny_model
        if self.main and not (path / "config.json").is_file():
            build_tiny_vlm(path, seed=self.cfg.seed)
        self.accelerator.wait_for_everyone()
        return str(path)

    def load(self) -> LoadedPolicy:
        """The model after the last finished stage (or the initial one)."""
        done = [s for s in self.stages if self.record.done(s)]
        return self._load(done[-1] if done else None)

    def _load(self, stage: str | None) -> LoadedPolicy:
        source = str(self.layout.model_dir(stage)) if stage else self._initial_model()
        lora = self.cfg.lora if stage is None else None  # a saved stage reloads its adapter trainable
        return load_policy(source, self.cfg.model_kind, lora, self.cfg.quantization or None, self.cfg.dtype)

    def _finish(self, stage: str, policy: LoadedPolicy) -> LoadedPolicy:
        """Save the stage's model (whole weights), evaluate it, record the stage; returns the policy to go on
        with: under ZeRO-3 the saved model reloaded, since the stage's engine left its weights sharded."""
        path = self.layout.model_dir(stage)
        with full_parameters(policy.model):
            if self.main:
                policy.model.save_pretrained(path)
                policy.processor.save_pretrained(path)
        self.accelerator.wait_for_everyone()
        if zero_stage(self.accelerator) == 3:
            policy = self._load(stage)
        self._record(stage, self.evaluate(policy))
        return policy

    # --- stages ---------------------------------------------------------------------------------------------
    def run_baseline_sft(self, policy: LoadedPolicy) -> None:
        cfg = replace(self.baseline_sft, output_dir=str(self.layout.model_dir("baseline_sft")))
        targets = [rationale_target(p) for p in self.train]
        sft_train(
            policy,
            self.train,
            targets,
            cfg,
            accelerator=self.accelerator,
            hooks=self.hooks,
            label="baseline_sft",
        )

    def run_rl(self, policy: LoadedPolicy, stage: str) -> None:
        cfg = replace(self.ppo, output_dir=str(self.layout.ppo_dir(stage)))
        reward = SentenceTeacherReward(self.teacher, self.cfg.neutral_score, self.cfg.teacher_concurrency)
        trainer = PPOTrainer(policy, reward, cfg, self.train, accelerator=self.accelerator)
        trainer.train(self.cfg.rl_iterations, hooks=self.hooks, label=stage)
        trainer.finish()

    def run_correct(self, policy: LoadedPolicy, stage: str) -> None:
        torch.manual_seed(self.cfg.seed + len(self.state["done"]))
        sampling = replace(
            self.ppo.sampling, num_samples=1, max_new_tokens=self.cfg.correction_max_new_tokens
        )
        mine = shard(list(range(len(self.train))), self.accelerator, pad=False)
        problems = [self.train[k] for k in mine]
        with generation_weights(policy.model):
            rationales = [s[0] for s in generate_texts(policy, problems, sampling)] if mine else []
        results = (
            self.teacher.correct_many(
                problems,
                [dedupe_sentences(r) or "(empty)" for r in rationales],
                concurrency=self.cfg.teacher_concurrency,
            )
            if mine
            else []
        )
        rows = gather_lists(self.accelerator, list(zip(mine, rationales, results, strict=True)))
        if self.main:
            self._write_corrections(stage, sorted(rows, key=lambda row: row[0]))
        self.accelerator.wait_for_everyone()

    def _write_corrections(self, stage: str, rows: list[tuple[int, str, Any]]) -> None:
        path = self.layout.corrections(stage)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", encoding="utf-8") as f:
            for k, rationale, fb in rows:
                problem = self.train[k]
                f.write(
                    json.dumps(
                        {
                            "problem": problem_to_dict(problem),
                            "rationale": rationale,
                            "ok": fb.ok,
                            "corrected": fb.text,
                            "failure": fb.failure,
                        }
                    )
                    + "\n"
                )

    def run_sft(self, policy: LoadedPolicy, stage: str) -> None:
        rows = [json.loads(line) for line in self.layout.corrections(stage).read_text().splitlines()]
        good = [r for r in rows if r["ok"]]
        self.record.data.setdefault("failed_corrections", {})[stage] = len(rows) - len(good)
        problems = [problem_from_dict(r["problem"]) for r in good]
        targets = [ensure_solution_prefix(r["corrected"]) for r in good]
        cfg = replace(self.sft, output_dir=str(self.layout.model_dir(stage)))
        if problems:
            sft_train(
                policy, problems, targets, cfg, accelerator=self.accelerator, hooks=self.hooks, label=stage
            )

    # --- evaluation and report ------------------------------------------------------------------------------
    def evaluate(self, policy: LoadedPolicy) -> dict[str, Any]:
        """Greedy rationales on the eval split: teacher sentence scores (cached) and quality metrics."""
        sampling = replace(
            self.ppo.sampling, num_samples=1, max_new_tokens=self.cfg.eval_max_new_tokens, do_sample=False
        )
        mine = shard(list(range(len(self.eval))), self.accelerator, pad=False)
        problems = [self.eval[k] for k in mine]
        with generation_weights(policy.model):
            local_texts = [s[0] for s in generate_texts(policy, problems, sampling)] if mine else []

        feedback_local = (
            self.teacher.score_many(
                problems,
                [sentence_texts(t) or ["(empty)"] for t in local_texts],
                concurrency=self.cfg.teacher_concurrency,
            )
            if mine
            else []
        )
        local = list(zip(mine, local_texts, feedback_local, strict=True))
        rows = sorted(gather_lists(self.accelerator, local), key=lambda row: row[0])
        texts, feedback = [row[1] for row in rows], [row[2] for row in rows]
        scores = [s for fb in feedback if fb.ok for s in fb.scores]
        # per-problem means give the standard error of the eval score (sentences of a problem are not
        # independent), so the report can tell a stage's effect from the noise of a small eval split
        per_problem = [sum(fb.scores) / len(fb.scores) for fb in feedback if fb.ok and fb.scores]
        examples = [
            {
                "id": p.id,
                "question": p.question,
                "sentences": sentence_texts(t),
                "scores": fb.scores if fb.ok else None,
            }
            for p, t, fb in list(zip(self.eval, texts, feedback, strict=True))[:3]
        ]
        return {
            "teacher_score_mean": sum(scores) / len(scores) if scores else float("nan"),
            "teacher_score_se": standard_error(per_problem),
            "eval_problems": len(per_problem),
            "failed_feedback": sum(not fb.ok for fb in feedback),
            **quality_summary(texts),
            "examples": examples,
        }

    def _stop_between_stages(self, finished: int) -> None:
        """A stop requested during a stage without a loop of its own (correction, evaluation) takes effect
        once that stage is recorded."""
        if self.hooks.stop_requested(self.accelerator):
            raise StopRequested(finished, len(self.stages), "stage")

    def run(self) -> dict[str, Any]:
        policy = self.load()
        if "initial" not in self.record.data["results"]:
            self._record("initial", self.evaluate(policy))
        for k, stage in enumerate(self.stages):
            if self.record.done(stage):
                continue
            self._stop_between_stages(k)
            kind = stage.rsplit("/", 1)[-1]
            if kind == "baseline_sft":
                self.run_baseline_sft(policy)
            else:
                getattr(self, f"run_{kind}")(policy, stage)
            policy = self._finish(stage, policy)
            if self.main:
                score = self.record.result(stage)["teacher_score_mean"]
                print(f"[ares] finished {stage}: teacher score {score:.3f}", flush=True)
        return self.write_report()

    def write_report(self) -> dict[str, Any]:
        """The report, written by the main process (other ranks get an empty mapping)."""
        from align.ares.report import write_ares_report

        report = {}
        if self.main:
            report = write_ares_report(
                self.layout, self.cfg, self.state, self.stages, self.teacher.cache.stats(), self.ppo
            )
        self.accelerator.wait_for_everyone()
        return report
