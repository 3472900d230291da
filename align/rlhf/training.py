"""The supervised stages of the RLHF recipes, each on its standard trainer and each resumable:

- `pretrain_lm`: language modelling on plain text with TRL's `SFTTrainer` (how `lvwerra/gpt2-imdb` was made:
  GPT-2 fine-tuned on IMDB reviews; the offline demo makes its tiny policy this way);
- `train_classifier`: a sentiment classifier with transformers' `Trainer` (the IMDB reward model);
- `train_sft`: supervised fine-tuning on prompt/completion pairs with TRL's `SFTTrainer` (TL;DR stage 1);
- `train_reward_model`: a scalar reward model on preference pairs with TRL's `RewardTrainer` (TL;DR stage 2).

Each writes trainer checkpoints under `<out>/checkpoints` and resumes from the last one when restarted
(`callbacks` are passed to the trainer; `HooksCallback` gives a stage our progress bar and stops it at the next
step with a checkpoint written); the final model (LoRA merged into its base) goes to `<out>/model`, and the
function returns its measurements (held-out loss before and after, held-out accuracy).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from datasets import Dataset
from transformers import TrainerCallback

from align.models.loading import LoraSettings, quantization_config
from align.rlhf.records import PreferencePair, Review, SummaryPair
from align.stopping import StopRequested
from align.train_hooks import TrainHooks
from align.trainers.distributed import is_main_process, wait_for_everyone


@dataclass
class TrainSettings:
    """Settings shared by the supervised stages (mapped onto TRL's / transformers' training arguments)."""

    epochs: float = field(default=1.0, metadata={"help": "Passes over the training data."})
    learning_rate: float = field(default=5e-5, metadata={"help": "AdamW learning rate."})
    batch_size: int = field(default=8, metadata={"help": "Examples per device step."})
    gradient_accumulation_steps: int = field(default=1, metadata={"help": "Steps per optimizer update."})
    weight_decay: float = field(default=0.0, metadata={"help": "AdamW weight decay."})
    warmup_ratio: float = field(
        default=0.0, metadata={"help": "Share of steps (in [0, 1)) with a linear warm-up."}
    )
    lr_scheduler: str = field(default="linear", metadata={"help": "transformers scheduler name."})
    max_length: int = field(default=1024, metadata={"help": "Longest tokenised example."})
    lora: LoraSettings | None = field(
        default=None, metadata={"help": "LoRA settings (`true`: r 64, alpha 128); none: all weights."}
    )
    quantization: str = field(default="", metadata={"help": "'', '4bit' or '8bit' (bitsandbytes, GPU)."})
    dtype: str = field(default="float32", metadata={"help": "Weights dtype when loading: float32, bfloat16."})
    save_steps: int = field(default=0, metadata={"help": "Checkpoint every N steps (0: every epoch)."})
    max_examples: int = field(default=0, metadata={"help": "Train on at most this many examples (0: all)."})
    seed: int = field(default=0, metadata={"help": "Seed of initialisation and data order."})


PRECISIONS = ("no", "bf16", "fp16")


class HooksCallback(TrainerCallback):
    """One progress bar (steps, ETA, loss) for a transformers/TRL training stage, and our stop request: at
    the next optimizer step the trainer writes its checkpoint and ends training; `train_stage` then raises
    `StopRequested` (the rerun resumes from that checkpoint)."""

    def __init__(self, hooks: TrainHooks, label: str):
        self.hooks, self.label = hooks, label
        self.bar: Any = None
        self.stopped: tuple[int, int] | None = None

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.bar = self.hooks.progress(
            state.max_steps, self.label, initial=state.global_step, main=state.is_world_process_zero
        )

    def on_log(self, args: Any, state: Any, control: Any, logs: dict | None = None, **kwargs: Any) -> None:
        if self.bar is not None and logs and "loss" in logs:
            self.hooks.show(self.bar, 0, loss=logs["loss"])

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.bar is not None:
            self.hooks.show(self.bar, 1)
        if self.hooks.stop_requested():
            control.should_save = True
            control.should_training_stop = True
            self.stopped = (state.global_step, state.max_steps)

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def checkpointing_by_its_name(config_class: type) -> dict[str, Any]:
    """TRL's configs default `gradient_checkpointing` to True, a name transformers 5 deprecates (a FutureWarning
    at every start): the same default under the new name, `activation_checkpointing`, where it exists."""
    fields = getattr(config_class, "__dataclass_fields__", {})
    if "activation_checkpointing" not in fields or "gradient_checkpointing" not in fields:
        return {}
    return {"activation_checkpointing": fields["gradient_checkpointing"].default}


def with_hooks(trainer: Any) -> Any:
    """A trainer given a `HooksCallback` shows our bar only: transformers' `PrinterCallback` (the log dicts it
    prints when its own bars are off) is removed."""
    from transformers.trainer_callback import PrinterCallback

    if any(isinstance(c, HooksCallback) for c in trainer.callback_handler.callbacks):
        trainer.remove_callback(PrinterCallback)
    return trainer


def train_stage(trainer: Any, resume: str | None) -> Any:
    """`trainer.train()` from the last checkpoint; `StopRequested` when a `HooksCallback` stopped it."""
    result = trainer.train(resume_from_checkpoint=resume)
    for callback in trainer.callback_handler.callbacks:
        if isinstance(callback, HooksCallback) and callback.stopped is not None:
            raise StopRequested(*callback.stopped, what=f"{callback.label} step")
    return result


def trainer_arguments(
    settings: TrainSettings, out: Path, mixed_precision: str = "no", **extra: Any
) -> dict[str, Any]:
    """Keyword arguments common to `TrainingArguments`, `SFTConfig` and `RewardConfig`. `mixed_precision` is
    the run's one setting (the PPO config's): accelerate allows a single precision per process."""
    if mixed_precision not in PRECISIONS:
        raise ValueError(f"mixed_precision must be one of {PRECISIONS}, got {mixed_precision!r}")
    return {
        "output_dir": str(out / "checkpoints"),
        "num_train_epochs": settings.epochs,
        "learning_rate": settings.learning_rate,
        "per_device_train_batch_size": settings.batch_size,
        "per_device_eval_batch_size": settings.batch_size,
        "gradient_accumulation_steps": settings.gradient_accumulation_steps,
        "weight_decay": settings.weight_decay,
        "warmup_steps": settings.warmup_ratio,
        "lr_scheduler_type": settings.lr_scheduler,
        "bf16": mixed_precision == "bf16",
        "fp16": mixed_precision == "fp16",
        "use_cpu": not torch.cuda.is_available(),
        "save_strategy": "steps" if settings.save_steps else "epoch",
        "save_steps": settings.save_steps or 500,
        "save_total_limit": 1,
        "logging_steps": 10,
        "report_to": [],
        "disable_tqdm": True,
        "seed": settings.seed,
        "data_seed": settings.seed,
        **extra,
    }


def model_init_kwargs(settings: TrainSettings) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"dtype": settings.dtype}
    qconfig = quantization_config(settings.quantization or None)
    if qconfig is not None:
        kwargs["quantization_config"] = qconfig
    return kwargs


def last_checkpoint(out: Path) -> str | None:
    from transformers.trainer_utils import get_last_checkpoint

    folder = out / "checkpoints"
    return get_last_checkpoint(str(folder)) if folder.is_dir() else None


def _limit(items: list, settings: TrainSettings) -> list:
    return items[: settings.max_examples] if settings.max_examples else items


def save_final(trainer: Any, base: str, settings: TrainSettings, out: Path, classifier: bool = False) -> Path:
    """Save the trained model to `<out>/model`: with LoRA, the adapter merged into an unquantized copy of
    the base, so later stages load one plain model (and a later LoRA's disabled adapter is this model)."""
    target = out / "model"
    if not trainer.accelerator.is_main_process:  # the main process saves; the others wait for the files
        trainer.accelerator.wait_for_everyone()
        return target
    model = trainer.model
    if hasattr(model, "merge_and_unload"):
        adapter = out / "adapter"
        model.save_pretrained(adapter)
        if settings.quantization:
            from peft import PeftModel
            from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

            auto = AutoModelForSequenceClassification if classifier else AutoModelForCausalLM
            extra = {"num_labels": 1} if classifier else {}
            reloaded = auto.from_pretrained(base, dtype=settings.dtype, **extra)
            model = PeftModel.from_pretrained(reloaded, adapter)
        model = model.merge_and_unload()
    model.save_pretrained(target)
    trainer.processing_class.save_pretrained(target)
    shutil.rmtree(out / "checkpoints", ignore_errors=True)
    trainer.accelerator.wait_for_everyone()
    return target


def evaluate_before_training(trainer: Any) -> dict[str, float]:
    """`trainer.evaluate()` before `train()`. Under DeepSpeed ZeRO-1/2 transformers refuses to evaluate
    before the training engine exists (its inference engine is ZeRO-3 only), so there the model is evaluated
    as loaded, outside DeepSpeed, with the trainer's own loss and metrics: the same eval loss (per-batch means
    weighted by batch size) and `compute_metrics`, every rank on the whole held-out set."""
    from transformers.integrations.deepspeed import is_deepspeed_zero3_enabled

    if not trainer.is_deepspeed_enabled or is_deepspeed_zero3_enabled():
        return trainer.evaluate()
    from transformers import EvalPrediction

    model = trainer.model.to(trainer.args.device)
    was_training = model.training
    model.eval()
    loader = torch.utils.data.DataLoader(
        trainer._remove_unused_columns(trainer.eval_dataset, description="evaluation"),
        batch_size=trainer.args.per_device_eval_batch_size,
        collate_fn=trainer.data_collator,
    )
    total, count, logits, labels = 0.0, 0, [], []
    with torch.no_grad():
        for batch in loader:
            inputs = {k: v.to(trainer.args.device) if torch.is_tensor(v) else v for k, v in batch.items()}
            loss, outputs = trainer.compute_loss(model, inputs, return_outputs=True)
            n = len(next(v for v in inputs.values() if torch.is_tensor(v)))
            total, count = total + float(loss) * n, count + n
            if trainer.compute_metrics is not None:
                logits.append(outputs["logits"].float().cpu())
                labels.append(inputs["labels"].cpu())
    model.train(was_training)
    metrics = {"eval_loss": total / max(count, 1)}
    if trainer.compute_metrics is not None:
        prediction = EvalPrediction(torch.cat(logits).numpy(), torch.cat(labels).numpy())
        metrics.update({f"eval_{k}": v for k, v in trainer.compute_metrics(prediction).items()})
    return metrics


@contextmanager
def _new_head_expected() -> Iterator[None]:
    """A reward model starts as the SFT model with a new score head: transformers' load report of that head
    as missing (newly initialised) is what we want, not news."""
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)


def _tokenizer(path: str):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def _sft(
    base: str,
    train: Dataset,
    held_out: Dataset,
    settings: TrainSettings,
    out: Path,
    callbacks: list | None,
    mixed_precision: str,
    **config: Any,
) -> dict:
    """TRL `SFTTrainer` on `train` (text or prompt/completion), held-out loss before and after."""
    from trl import SFTConfig, SFTTrainer

    args = SFTConfig(
        **trainer_arguments(settings, out, mixed_precision),
        max_length=settings.max_length,
        model_init_kwargs=model_init_kwargs(settings),
        packing=False,
        **checkpointing_by_its_name(SFTConfig),
        **config,
    )
    trainer = SFTTrainer(
        model=base,
        args=args,
        train_dataset=train,
        eval_dataset=held_out,
        processing_class=_tokenizer(base),
        peft_config=settings.lora.to_peft() if settings.lora else None,
        callbacks=callbacks,
    )
    return _fit(with_hooks(trainer), base, settings, out)


def pretrain_lm(
    base: str,
    texts: list[str],
    eval_texts: list[str],
    settings: TrainSettings,
    out: Path,
    callbacks: list | None = None,
    mixed_precision: str = "no",
) -> dict:
    """Language modelling on `texts` (TRL `SFTTrainer`, a "text" dataset); held-out loss before and after."""
    train = Dataset.from_dict({"text": _limit(texts, settings)})
    held_out = Dataset.from_dict({"text": eval_texts})
    return _sft(base, train, held_out, settings, out, callbacks, mixed_precision, dataset_text_field="text")


def train_sft(
    base: str,
    train: list[SummaryPair],
    held_out: list[SummaryPair],
    settings: TrainSettings,
    out: Path,
    callbacks: list | None = None,
    mixed_precision: str = "no",
) -> dict:
    """SFT on prompt/completion pairs (TRL `SFTTrainer`, loss on the completion only); held-out loss before
    and after training."""

    def dataset(pairs: list[SummaryPair]) -> Dataset:
        return Dataset.from_dict(
            {"prompt": [p.prompt for p in pairs], "completion": [p.completion for p in pairs]}
        )

    return _sft(
        base,
        dataset(_limit(train, settings)),
        dataset(held_out),
        settings,
        out,
        callbacks,
        mixed_precision,
        completion_only_loss=True,
    )


def _fit(trainer: Any, base: str, settings: TrainSettings, out: Path, classifier: bool = False) -> dict:
    """Held-out loss, train (resuming from the last checkpoint), held-out loss again, save the model."""
    before = evaluate_before_training(trainer)["eval_loss"]
    resume = last_checkpoint(out)
    result = train_stage(trainer, resume)
    after = trainer.evaluate()["eval_loss"]
    path = save_final(trainer, base, settings, out, classifier)
    return {
        "eval_loss_before": float(before),
        "eval_loss_after": float(after),
        "train_loss": float(result.training_loss),
        "resumed_from": resume,
        "model": str(path),
    }


def train_classifier(
    base: str,
    train: list[Review],
    held_out: list[Review],
    settings: TrainSettings,
    out: Path,
    callbacks: list | None = None,
    mixed_precision: str = "no",
) -> dict:
    """A sentiment classifier (`AutoModelForSequenceClassification` + transformers `Trainer`); held-out
    accuracy before and after training."""
    import numpy as np
    from transformers import (
        AutoModelForSequenceClassification,
        DataCollatorWithPadding,
        Trainer,
        TrainingArguments,
    )

    from align.rlhf.imdb_data import clean_review

    tokenizer = _tokenizer(base)

    def dataset(reviews: list[Review]) -> Dataset:
        enc = tokenizer(
            [clean_review(r.text) for r in reviews], truncation=True, max_length=settings.max_length
        )
        return Dataset.from_dict({**enc, "labels": [r.label for r in reviews]})

    def accuracy(pred: Any) -> dict[str, float]:
        return {"accuracy": float((np.argmax(pred.predictions, -1) == pred.label_ids).mean())}

    model = AutoModelForSequenceClassification.from_pretrained(base, **model_init_kwargs(settings))
    trainer = Trainer(
        model=model,
        args=TrainingArguments(**trainer_arguments(settings, out, mixed_precision)),
        train_dataset=dataset(_limit(train, settings)),
        eval_dataset=dataset(held_out),
        data_collator=DataCollatorWithPadding(tokenizer),
        processing_class=tokenizer,
        compute_metrics=accuracy,
        callbacks=callbacks,
    )
    with_hooks(trainer)
    before = evaluate_before_training(trainer)
    resume = last_checkpoint(out)
    train_stage(trainer, resume)
    after = trainer.evaluate()
    path = save_final(trainer, base, settings, out, classifier=True)
    return {
        "accuracy_before": before["eval_accuracy"],
        "accuracy": after["eval_accuracy"],
        "eval_loss_before": before["eval_loss"],
        "eval_loss_after": after["eval_loss"],
        "held_out": len(held_out),
        "resumed_from": resume,
        "model": str(path),
    }


def preference_accuracy(
    model_path: str, pairs: list[PreferencePair], batch_size: int = 16
) -> dict[str, float]:
    """Share of pairs whose chosen summary the reward model scores above the rejected one (ties count half),
    scoring exactly what the PPO stage scores (prompt + completion + EOS)."""
    from align.rlhf.rewards import ClassifierScore, summary_text

    scorer = ClassifierScore(model_path, label="", batch_size=batch_size)
    eos = scorer.eos_token
    chosen = scorer.score_texts([summary_text(p.prompt, p.chosen, eos) for p in pairs])
    rejected = scorer.score_texts([summary_text(p.prompt, p.rejected, eos) for p in pairs])
    wins = sum(1.0 if c > r else 0.5 if c == r else 0.0 for c, r in zip(chosen, rejected, strict=True))
    margins = [c - r for c, r in zip(chosen, rejected, strict=True)]
    return {"accuracy": wins / len(pairs), "mean_margin": sum(margins) / len(margins), "pairs": len(pairs)}


def train_reward_model(
    base: str,
    train: list[PreferencePair],
    held_out: list[PreferencePair],
    settings: TrainSettings,
    out: Path,
    callbacks: list | None = None,
    mixed_precision: str = "no",
) -> dict:
    """A scalar reward model on preference pairs (TRL `RewardTrainer`, Bradley-Terry loss); held-out
    accuracy (chosen scored above rejected) of the initial and of the trained model."""
    from transformers import AutoModelForSequenceClassification
    from trl import RewardConfig, RewardTrainer

    def dataset(pairs: list[PreferencePair]) -> Dataset:
        return Dataset.from_dict(
            {
                "prompt": [p.prompt for p in pairs],
                "chosen": [p.chosen for p in pairs],
                "rejected": [p.rejected for p in pairs],
            }
        )

    tokenizer = _tokenizer(base)
    torch.manual_seed(settings.seed)  # the new score head's initialisation
    with _new_head_expected():
        model = AutoModelForSequenceClassification.from_pretrained(
            base, num_labels=1, **model_init_kwargs(settings)
        )
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    init = out / "initial"
    main = is_main_process()
    if main and not (init / "config.json").is_file():  # the untrained model, for the chance-level accuracy
        model.save_pretrained(init)
        tokenizer.save_pretrained(init)
    wait_for_everyone()
    before = preference_accuracy(str(init), held_out, settings.batch_size)
    peft = None
    if settings.lora:
        peft = settings.lora.to_peft()
        peft.task_type, peft.modules_to_save = "SEQ_CLS", ["score"]
    trainer = RewardTrainer(
        model=model,
        args=RewardConfig(
            **trainer_arguments(settings, out, mixed_precision),
            max_length=settings.max_length,
            **checkpointing_by_its_name(RewardConfig),
        ),
        train_dataset=dataset(_limit(train, settings)),
        eval_dataset=dataset(held_out),
        processing_class=tokenizer,
        peft_config=peft,
        callbacks=callbacks,
    )
    with_hooks(trainer)
    resume = last_checkpoint(out)
    train_stage(trainer, resume)
    path = save_final(trainer, base, settings, out, classifier=True)
    if main:
        shutil.rmtree(init, ignore_errors=True)
    after = preference_accuracy(str(path), held_out, settings.batch_size)
    return {"accuracy_before": before["accuracy"], **after, "resumed_from": resume, "model": str(path)}
