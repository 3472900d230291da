"""The ARES loop (Byun et al., 2024): rounds of RL with sentence-level teacher feedback, then correction SFT.

Stages, in order: an optional `baseline_sft` on gold rationales (the paper starts from an SFT'd MM-CoT
model), then per round `rl` (PPO, rewards on sentence-final tokens), `correct` (sample rationales, drop
repeated sentences, ask the teacher to correct them) and `sft` (fine-tune on the corrections). After each
stage the model is saved and `ares_state.json` records the stage as done, so a killed run resumes at the
first unfinished stage; every teacher call goes through the feedback cache, so nothing is paid for twice.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from align.data import (
    load_aokvqa,
    load_sample_aokvqa,
    load_sample_scienceqa,
    load_scienceqa,
    rationale_target,
)
from align.data.jsonl import problem_from_dict, problem_to_dict
from align.data.prompts import ensure_solution_prefix
from align.eval.quality import quality_summary
from align.generate import SamplingConfig, generate_texts
from align.models import LoraSettings, build_tiny_vlm, load_policy
from align.models.loading import LoadedPolicy
from align.text.sentences import sentence_texts
from align.trainers.ppo import PPOTrainer
from align.trainers.ppo_config import PPOConfig
from align.trainers.reward_fns import SentenceTeacherReward
from align.trainers.sft import SFTConfig, sft_train
from teacher import CachedTeacher, FeedbackCache, make_teacher
from teacher.limits import RetryPolicy

STATE_FILE = "ares_state.json"


@dataclass
class AresConfig:
    """What to train, on what, with which teacher, for how many rounds."""

    output_dir: str = field(
        default="runs/ares-demo", metadata={"help": "Run folder (state, stages, report)."}
    )
    dataset: str = field(default="scienceqa", metadata={"help": "scienceqa or aokvqa."})
    data_root: str = field(
        default="", metadata={"help": "Dataset folder in the released layout; empty: our sample data."}
    )
    image_root: str = field(
        default="", metadata={"help": "Image folder (A-OKVQA: COCO root) if not under data_root."}
    )
    train_split: str = field(default="train", metadata={"help": "Split for RL and correction."})
    eval_split: str = field(default="val", metadata={"help": "Split evaluated after every stage."})
    max_train_problems: int = field(
        default=0, metadata={"help": "Use at most this many training problems (0: all)."}
    )
    max_eval_problems: int = field(
        default=0, metadata={"help": "Evaluate at most this many problems (0: all)."}
    )
    model: str = field(
        default="", metadata={"help": "Hub id or local path of the policy; empty: build the tiny VLM."}
    )
    model_kind: str = field(default="auto", metadata={"help": "auto, causal or vlm."})
    lora: bool = field(default=False, metadata={"help": "Train LoRA adapters instead of all weights."})
    lora_r: int = field(default=64, metadata={"help": "LoRA rank."})
    lora_alpha: int = field(default=128, metadata={"help": "LoRA alpha."})
    lora_dropout: float = field(default=0.05, metadata={"help": "LoRA dropout."})
    quantization: str = field(default="", metadata={"help": "'', '4bit' or '8bit' (bitsandbytes, GPU)."})
    dtype: str = field(default="float32", metadata={"help": "Model dtype: float32, bfloat16, float16, auto."})
    teacher: str = field(
        default="reference", metadata={"help": "Teacher spec, e.g. openai:gpt-4o or reference."}
    )
    cache: str = field(
        default="", metadata={"help": "Feedback cache path; empty: <output_dir>/feedback.sqlite."}
    )
    teacher_concurrency: int = field(default=16, metadata={"help": "Concurrent teacher requests."})
    rounds: int = field(default=1, metadata={"help": "ARES rounds (RL then correction SFT)."})
    rl_iterations: int = field(default=4, metadata={"help": "PPO iterations per round."})
    correction_max_new_tokens: int = field(
        default=64, metadata={"help": "Length of rationales sent for correction."}
    )
    eval_max_new_tokens: int = field(
        default=64, metadata={"help": "Length of rationales generated for evaluation."}
    )
    seed: int = field(default=0, metadata={"help": "Seed of the whole run."})


def load_problems(cfg: AresConfig, split: str, limit: int = 0) -> list[Any]:
    """The configured dataset split (our samples when `data_root` is empty), capped at `limit`."""
    if cfg.dataset == "scienceqa":
        problems = (
            load_scienceqa(cfg.data_root, split, cfg.image_root or None)
            if cfg.data_root
            else load_sample_scienceqa(split)
        )
    elif cfg.dataset == "aokvqa":
        problems = (
            load_aokvqa(cfg.data_root, split, cfg.image_root or None)
            if cfg.data_root
            else load_sample_aokvqa(split)
        )
    else:
        raise ValueError(f"dataset must be 'scienceqa' or 'aokvqa', got {cfg.dataset!r}")
    return problems[:limit] if limit else problems


def stage_names(cfg: AresConfig, baseline: bool) -> list[str]:
    names = ["baseline_sft"] if baseline else []
    for r in range(1, cfg.rounds + 1):
        names += [f"round{r}/rl", f"round{r}/correct", f"round{r}/sft"]
    return names


def dedupe_sentences(text: str) -> str:
    """Remove exact repeats of earlier sentences (ARES does this before asking for a correction)."""
    seen, kept = set(), []
    for sentence in sentence_texts(text):
        if sentence not in seen:
            kept.append(sentence)
            seen.add(sentence)
    return " ".join(kept)


class AresRun:
    """One ARES run in `cfg.output_dir`; `run()` executes (or resumes) every stage and writes the report."""

    def __init__(
        self, cfg: AresConfig, ppo: PPOConfig, sft: SFTConfig, baseline_sft: SFTConfig | None = None
    ):
        self.cfg, self.ppo, self.sft, self.baseline_sft = cfg, ppo, sft, baseline_sft
        self.out = Path(cfg.output_dir)
        self.out.mkdir(parents=True, exist_ok=True)
        self.state_path = self.out / STATE_FILE
        self.state = (
            json.loads(self.state_path.read_text())
            if self.state_path.is_file()
            else {"done": [], "evals": {}}
        )
        self.train = load_problems(cfg, cfg.train_split, cfg.max_train_problems)
        self.eval = load_problems(cfg, cfg.eval_split, cfg.max_eval_problems)
        teacher = make_teacher(cfg.teacher)
        # transient provider errors (429, 5xx, timeouts) are retried with backoff before a sample is dropped
        self.teacher = CachedTeacher(
            teacher, FeedbackCache(cfg.cache or self.out / "feedback.sqlite"), retry=RetryPolicy()
        )
        self.stages = stage_names(cfg, baseline_sft is not None and baseline_sft.epochs > 0)

    # --- persistence ----------------------------------------------------------------------------------------
    def _save_state(self) -> None:
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.state, indent=1))
        os.replace(tmp, self.state_path)

    def stage_dir(self, stage: str) -> Path:
        return self.out / "stages" / stage.replace("/", "-")

    def _initial_model(self) -> str:
        if self.cfg.model:
            return self.cfg.model
        path = self.out / "tiny-vlm"
        if not (path / "config.json").is_file():
            build_tiny_vlm(path, seed=self.cfg.seed)
        return str(path)

    def load(self) -> LoadedPolicy:
        """The model after the last finished stage (or the initial one)."""
        done = [s for s in self.stages if s in self.state["done"]]
        source = str(self.stage_dir(done[-1])) if done else self._initial_model()
        lora = None
        if self.cfg.lora and not done:
            lora = LoraSettings(self.cfg.lora_r, self.cfg.lora_alpha, self.cfg.lora_dropout)
        return load_policy(source, self.cfg.model_kind, lora, self.cfg.quantization or None, self.cfg.dtype)

    def _finish(self, stage: str, policy: LoadedPolicy) -> None:
        path = self.stage_dir(stage)
        policy.model.save_pretrained(path)
        policy.processor.save_pretrained(path)
        self.state["evals"][stage] = self.evaluate(policy)
        self.state["done"].append(stage)
        self._save_state()

    # --- stages ---------------------------------------------------------------------------------------------
    def run_baseline_sft(self, policy: LoadedPolicy) -> None:
        cfg = SFTConfig(**{**asdict(self.baseline_sft), "output_dir": str(self.stage_dir("baseline_sft"))})
        sft_train(policy, self.train, [rationale_target(p) for p in self.train], cfg)

    def run_rl(self, policy: LoadedPolicy, stage: str) -> None:
        cfg = PPOConfig(**{**asdict(self.ppo), "output_dir": str(self.out / stage.replace("/", "-") / "ppo")})
        reward = SentenceTeacherReward(self.teacher, cfg.neutral_score, self.cfg.teacher_concurrency)
        PPOTrainer(policy, reward, cfg, self.train).train(self.cfg.rl_iterations)

    def run_correct(self, policy: LoadedPolicy, stage: str) -> None:
        torch.manual_seed(self.cfg.seed + len(self.state["done"]))
        sampling = SamplingConfig(
            num_samples=1,
            max_new_tokens=self.cfg.correction_max_new_tokens,
            top_k=self.ppo.top_k,
            batch_size=self.ppo.generation_batch_size,
        )
        rationales = [samples[0] for samples in generate_texts(policy, self.train, sampling)]

        async def correct_all() -> list[Any]:
            import asyncio

            gate = asyncio.Semaphore(self.cfg.teacher_concurrency)

            async def one(problem: Any, rationale: str) -> Any:
                async with gate:
                    return await self.teacher.acorrect(problem, dedupe_sentences(rationale) or "(empty)")

            return await asyncio.gather(*(one(p, r) for p, r in zip(self.train, rationales, strict=True)))

        results = self.teacher.run_sync(correct_all())
        path = self.out / stage.replace("/", "-") / "corrections.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", encoding="utf-8") as f:
            for problem, rationale, fb in zip(self.train, rationales, results, strict=True):
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
        correct_stage = stage.replace("/sft", "/correct").replace("/", "-")
        rows = [
            json.loads(line)
            for line in (self.out / correct_stage / "corrections.jsonl").read_text().splitlines()
        ]
        good = [r for r in rows if r["ok"]]
        self.state.setdefault("failed_corrections", {})[stage] = len(rows) - len(good)
        problems = [problem_from_dict(r["problem"]) for r in good]
        targets = [ensure_solution_prefix(r["corrected"]) for r in good]
        cfg = SFTConfig(**{**asdict(self.sft), "output_dir": str(self.stage_dir(stage))})
        if problems:
            sft_train(policy, problems, targets, cfg)

    # --- evaluation and report ------------------------------------------------------------------------------
    def evaluate(self, policy: LoadedPolicy) -> dict[str, Any]:
        """Greedy rationales on the eval split: teacher sentence scores (cached) and quality metrics."""
        sampling = SamplingConfig(
            num_samples=1,
            max_new_tokens=self.cfg.eval_max_new_tokens,
            do_sample=False,
            batch_size=self.ppo.generation_batch_size,
        )
        texts = [s[0] for s in generate_texts(policy, self.eval, sampling)]

        async def score_all() -> list[Any]:
            import asyncio

            return await asyncio.gather(
                *(
                    self.teacher.ascore_sentences(p, sentence_texts(t) or ["(empty)"])
                    for p, t in zip(self.eval, texts, strict=True)
                )
            )

        feedback = self.teacher.run_sync(score_all())
        scores = [s for fb in feedback if fb.ok for s in fb.scores]
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
            "failed_feedback": sum(not fb.ok for fb in feedback),
            **quality_summary(texts),
            "examples": examples,
        }

    def run(self) -> dict[str, Any]:
        policy = self.load()
        if "initial" not in self.state["evals"]:
            self.state["evals"]["initial"] = self.evaluate(policy)
            self._save_state()
        for stage in self.stages:
            if stage in self.state["done"]:
                continue
            kind = stage.rsplit("/", 1)[-1]
            if kind == "baseline_sft":
                self.run_baseline_sft(policy)
            else:
                getattr(self, f"run_{kind}")(policy, stage)
            self._finish(stage, policy)
            print(
                f"[ares] finished {stage}: teacher score {self.state['evals'][stage]['teacher_score_mean']:.3f}",
                flush=True,
            )
        return self.write_report()

    def write_report(self) -> dict[str, Any]:
        from align.report import write_ares_report

        return write_ares_report(self.out, self.cfg, self.state, self.stages, self.teacher.cache.stats())
