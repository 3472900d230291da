"""What the IMDB and TL;DR runs share: a run folder whose stages resume, the held-out evaluation of the initial
policy, and one PPO/SPPO stage per seed through the project's PPO trainer (`align.trainers.ppo.PPOTrainer`
with a `SequenceReward`): there is no second PPO here.

Run folder: `rlhf_state.json` (a `RunRecord`: the config recorded at the first start, the stages done and
their results; a later start with another config is refused), `stages/<stage>/` (trained models),
`seed<k>/ppo/` (PPO checkpoints and `metrics.jsonl`), `seed<k>/policy/` (the final policy),
`seed<k>/samples.jsonl` (held-out samples), `report.md` / `report.json` / `report.png`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from align.models.loading import LoadedPolicy, load_policy
from align.recipe_config import ConfigError, config_record, neutral_fields
from align.rlhf.config import EvalSettings, PolicySettings
from align.rlhf.metrics import evaluate_policy
from align.rlhf.records import RLPrompt
from align.rlhf.rewards import BatchedSequenceReward, ScoreBatch
from align.run_folder import open_run_record, resume_note
from align.train_hooks import TrainHooks
from align.trainers.distributed import make_accelerator
from align.trainers.ppo import PPOTrainer
from align.trainers.ppo_config import PPOConfig
from align.trainers.prompt_source import TextPrompt


def context_length(config: Any) -> int | None:
    """The longest sequence a model's positions allow (GPT-2 `n_positions`, others `max_position_embeddings`)."""
    config = config.get_text_config() if hasattr(config, "get_text_config") else config
    for name in ("n_positions", "max_position_embeddings"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def tokenizer_and_context(path: str) -> tuple[Any, int | None]:
    """A policy's tokenizer and context length, without loading its weights (a LoRA adapter folder names
    its base)."""
    from transformers import AutoConfig, AutoTokenizer

    adapter = Path(path) / "adapter_config.json"
    base = json.loads(adapter.read_text())["base_model_name_or_path"] if adapter.is_file() else path
    return AutoTokenizer.from_pretrained(path), context_length(AutoConfig.from_pretrained(base))


def check_prompts_fit(
    tokenizer: Any, prompts: list[RLPrompt], max_new_tokens: int, context: int | None, model: str
) -> None:
    """An error naming the first prompt whose tokens plus the generated ones exceed the model's context."""
    if context is None:
        return
    for p in prompts:
        n = len(tokenizer(p.prompt)["input_ids"])  # as the rollout encodes raw prompts
        if n + max_new_tokens > context:
            raise ConfigError(
                f"prompt {p.id!r} has {n} tokens; with {max_new_tokens} new tokens that exceeds the "
                f"{context}-token context of {model!r} (shorten prompts: prompt_tokens / max_prompt_tokens)"
            )


STATE_FILE = "rlhf_state.json"


class RlhfRun:
    """Base of `ImdbRun` and `TldrRun`: the run record, the evaluation and the per-seed RL stage.

    `sections` (the recipe's config sections) are recorded at the run's first start; a later start whose
    result-changing settings differ is refused (`overwrite` starts over; more or fewer seeds are allowed:
    each seed is a stage of its own). `hooks` carry the command's stop request and progress settings."""

    name = "rlhf"
    with_rouge = False  # ROUGE against the prompts' reference texts in the evaluation

    def __init__(
        self,
        output_dir: str,
        ppo: PPOConfig,
        eval_settings: EvalSettings,
        policy_settings: PolicySettings,
        sections: Mapping[str, Any] | None = None,
        hooks: TrainHooks | None = None,
        overwrite: bool = False,
    ):
        self.root = Path(output_dir)
        self.hooks = hooks or TrainHooks()
        # the run's one accelerator (accelerate allows one precision per process): its precision, from
        # `ppo.mixed_precision` or the launch, is also the TRL stages' precision
        self.accelerator = make_accelerator(ppo.mixed_precision)
        config = config_record(sections if sections is not None else {"ppo": ppo})
        seeds = [
            f"{name}.seeds" for name, value in config.items() if isinstance(value, dict) and "seeds" in value
        ]
        self.record = open_run_record(
            self.root,
            config,
            name=STATE_FILE,
            ignore=neutral_fields(config, extra=seeds),
            overwrite=overwrite,
            accelerator=self.accelerator,
            keep=("judge.sqlite", "judge.sqlite-wal", "judge.sqlite-shm"),  # paid-for judgments stay valid
        )
        self.state = self.record  # the stages done and their results (the name earlier code used)
        self.root.mkdir(parents=True, exist_ok=True)
        # these tasks prompt with raw text (review prefixes, "... TL;DR:" posts, as SFT trains them): the chat
        # template is used only when the config asks for it
        self.ppo = replace(ppo, chat=bool(ppo.chat))
        self.eval_settings, self.policy_settings = eval_settings, policy_settings
        self.precision = str(self.accelerator.mixed_precision)
        self.device = self.accelerator.device

    def hooks_callback(self, stage: str) -> Any:
        """A transformers `TrainerCallback` giving a TRL/transformers stage our progress bar and stop."""
        from align.rlhf.training import HooksCallback

        return HooksCallback(self.hooks, stage)

    def announce_resume(self, stages: list[str]) -> None:
        note = resume_note(self.record, stages)
        if note:
            print(f"[{self.name}] {note}", flush=True)

    def extend(self, result: dict[str, Any], prompts: list[RLPrompt], seed: int) -> dict[str, Any]:
        """Further measurements of an evaluation, its `samples` included (the TL;DR judge)."""
        return result

    def stage_dir(self, stage: str) -> Path:
        return self.root / "stages" / stage

    def seed_dir(self, seed: int) -> Path:
        return self.root / f"seed{seed}"

    @property
    def main(self) -> bool:
        return self.accelerator.is_main_process

    def on_main(self, fn: Callable[[], Any]) -> None:
        """`fn` on the main process (files every rank then reads), the others waiting for it."""
        if self.main:
            fn()
        self.accelerator.wait_for_everyone()

    def stage(self, name: str, fn: Callable[[], dict[str, Any]], collective: bool = False) -> dict[str, Any]:
        """Run `fn` unless the stage is done; record and print its result. Under several processes a
        `collective` stage (training) runs on every rank and any other (evaluation) on the main one alone
        (the others record it as done with no result: only the main process reads evaluation results); the
        record is written by the main process, which the others wait for."""
        if not self.state.done(name):
            result = fn() if collective or self.main else {}
            self.state.record(name, result)  # on disk by the main process only (read-only on the others)
            if self.main:
                shown = {k: v for k, v in result.items() if isinstance(v, int | float)}
                print(f"[{self.name}] finished {name}: {json.dumps(shown)}", flush=True)
            self.accelerator.wait_for_everyone()
        return self.state.result(name)

    def load_policy(self, path: str, lora: bool = True) -> LoadedPolicy:
        s = self.policy_settings
        return load_policy(path, "causal", s.lora if lora else None, s.quantization or None, s.dtype)

    def evaluate(
        self,
        policy: LoadedPolicy,
        prompts: list[RLPrompt],
        score: ScoreBatch,
        seed: int,
        reference: Any = None,
    ) -> dict[str, Any]:
        e, s = self.eval_settings, self.ppo.sampling
        return evaluate_policy(
            policy,
            prompts,
            score,
            s.max_new_tokens,
            reference=reference,
            reference_context=policy.reference if policy.has_lora and reference is None else None,
            do_sample=e.do_sample,
            top_k=s.top_k,
            batch_size=e.batch_size,
            seed=seed,
            with_rouge=self.with_rouge,
            chat=bool(self.ppo.chat),
        )

    def evaluate_initial(self, policy_path: str, prompts: list[RLPrompt], score: ScoreBatch) -> dict:
        """The starting policy on the held-out prompts (its KL to itself is 0)."""
        policy = self.load_policy(policy_path, lora=False)
        if not self.policy_settings.quantization:
            policy.model.to(self.device)
        result = self.extend(self.evaluate(policy, prompts, score, seed=0), prompts, 0)
        write_samples(self.stage_dir("initial") / "samples.jsonl", result.pop("samples"))
        return result

    def rl_seed(
        self,
        seed: int,
        policy_path: str,
        iterations: int,
        prompts: list[RLPrompt],
        eval_prompts: list[RLPrompt],
        score: ScoreBatch,
    ) -> dict[str, Any]:
        """PPO/SPPO from `policy_path` with the given seed (resuming from its checkpoint), then the held-out
        evaluation of the final policy against the initial one."""
        folder = self.seed_dir(seed)
        policy = self.load_policy(policy_path)
        cfg = replace(self.ppo, seed=seed, output_dir=str(folder / "ppo"))
        trainer = PPOTrainer(
            policy,
            BatchedSequenceReward(score),
            cfg,
            prompts,
            prompt_source=TextPrompt("prompt"),
            accelerator=self.accelerator,
        )
        start, done_before = time.perf_counter(), len(read_metrics(folder / "ppo" / "metrics.jsonl"))
        trainer.train(iterations, hooks=self.hooks, label=f"seed{seed}")
        seconds = time.perf_counter() - start
        result: dict[str, Any] = {}
        if self.main:  # the evaluation runs once, on the main process (one judge request per item)
            result = self.evaluate(policy, eval_prompts, score, seed=seed, reference=trainer.ref_model)
            result = self.extend(result, eval_prompts, seed)
            write_samples(folder / "samples.jsonl", result.pop("samples"))
        trainer.finish()  # drops the frozen reference, so the policy saved is the trained one only
        if self.main:
            policy.model.save_pretrained(folder / "policy")
            policy.tokenizer.save_pretrained(folder / "policy")
        self.accelerator.wait_for_everyone()
        # wall-clock of the iterations trained in this process (a resumed stage times only its remainder)
        timing = {"train_seconds": seconds, "iterations_timed": max(iterations - done_before, 0)}
        return {"seed": seed, "iterations": iterations, **timing, **result}


def write_samples(path: Path, samples: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for row in samples:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def read_samples(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def read_metrics(path: Path) -> list[dict[str, float]]:
    """A PPO run's `metrics.jsonl`, one row per iteration (the last row wins where a resumed run logged an
    iteration twice)."""
    if not path.is_file():
        return []
    rows: dict[int, dict[str, float]] = {}
    for line in path.read_text().splitlines():
        if line.strip():
            row = json.loads(line)
            rows[int(row["iteration"])] = row
    return [rows[k] for k in sorted(rows)]
