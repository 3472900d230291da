"""Supervised fine-tuning on (problem, target rationale) pairs with the prompt masked out of the loss.

Serves ARES's correction stage (targets = teacher-corrected rationales) and the baseline stage (targets =
gold rationales). Works for causal LMs and VLMs (images through the processor), LoRA or full. A small
accelerate loop rather than TRL's SFTTrainer: our examples carry images and prompts rendered by the same
`encode` as generation, so prompt masking is exact for both model kinds.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator

from align.data.prompts import build_prompt
from align.models.inputs import encode
from align.models.loading import LoadedPolicy
from align.models.tokens import pad_token_id, stop_token_ids
from align.models.vision_inputs import extend_aligned, join_rows, split_rows
from align.stopping import StopRequested
from align.train_hooks import TrainHooks
from align.trainers.distributed import (
    accumulation_windows,
    check_precision,
    configure_deepspeed,
    gather_lists,
    is_deepspeed,
    make_accelerator,
    micro_step,
    precision_summary,
    shard,
)
from align.trainers.prompt_source import Prompt, PromptSource, as_prompt


@dataclass
class SFTConfig:
    """Fine-tuning settings (ARES correction SFT: lr 8e-5, batch 8, 20 epochs full fine-tune)."""

    output_dir: str = field(default="runs/sft", metadata={"help": "Where metrics go."})
    epochs: int = field(default=3, metadata={"help": "Passes over the examples."})
    learning_rate: float = field(default=8e-5, metadata={"help": "AdamW learning rate."})
    weight_decay: float = field(default=0.0, metadata={"help": "AdamW weight decay."})
    batch_size: int = field(default=8, metadata={"help": "Examples per step."})
    gradient_accumulation_steps: int = field(default=1, metadata={"help": "Micro-steps per optimizer step."})
    max_grad_norm: float = field(default=1.0, metadata={"help": "Gradient clipping norm."})
    max_target_tokens: int = field(
        default=256, metadata={"help": "Targets are truncated to this many tokens."}
    )
    prompt_format: str = field(default="QCM-E", metadata={"help": "MM-CoT prompt format of the inputs."})
    chat: bool | None = field(
        default=None,
        metadata={
            "help": "Prompts through the chat template: true, false (raw text), none (when there is one)."
        },
    )
    mixed_precision: str | None = field(
        default=None,
        metadata={"help": "no, fp16 or bf16; none: the launch's setting (accelerate config or flags)."},
    )
    seed: int = field(default=0, metadata={"help": "Seed for the example order."})


@dataclass
class SFTExample:
    """One tokenised example: ids, labels (-100 on the prompt), its image inputs (any VLM layout) and its
    token-aligned inputs (`mm_token_type_ids`)."""

    input_ids: torch.Tensor
    labels: torch.Tensor
    vision: dict[str, torch.Tensor] = field(default_factory=dict)
    aligned: dict[str, torch.Tensor] = field(default_factory=dict)


def build_examples(
    policy: LoadedPolicy,
    problems: list[Any],
    targets: list[str],
    cfg: SFTConfig,
    rationales: list[str] | None = None,
    prompt_source: PromptSource | None = None,
) -> list[SFTExample]:
    """Tokenise prompt + target + the stop token; labels are -100 on the prompt. Prompts come from
    `prompt_source`, or else the MM-CoT `cfg.prompt_format` (`rationales` feed the QCMG-A format)."""
    if len(problems) != len(targets):
        raise ValueError(f"{len(problems)} problems but {len(targets)} targets")
    examples = []
    tok, stop = policy.tokenizer, stop_token_ids(policy)[0]
    for k, (problem, target) in enumerate(zip(problems, targets, strict=True)):
        if prompt_source is not None:
            prompt_k = as_prompt(prompt_source(problem))
        else:
            text = build_prompt(problem, cfg.prompt_format, rationales[k] if rationales else None)
            prompt_k = Prompt(text, problem.image)
        image = prompt_k.image if policy.is_vlm else None
        prompt = encode(policy, [prompt_k.text], [image] if image else None, chat=cfg.chat)
        target_ids = tok(target, add_special_tokens=False)["input_ids"][: cfg.max_target_tokens] + [stop]
        ids = torch.cat([prompt["input_ids"][0], torch.tensor(target_ids)])
        labels = ids.clone()
        labels[: prompt["input_ids"].shape[1]] = -100
        rows, aligned = split_rows(prompt, 1)
        aligned = {key: value[0] for key, value in extend_aligned(aligned, len(ids)).items()}
        examples.append(SFTExample(ids, labels, rows[0], aligned))
    return examples


def _collate(batch: list[SFTExample], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded ids, labels and token-aligned inputs, and the batch's image inputs."""
    length = max(len(e.input_ids) for e in batch)
    ids = torch.full((len(batch), length), pad_id)
    labels = torch.full((len(batch), length), -100)
    attention = torch.zeros((len(batch), length), dtype=torch.long)
    aligned = {
        key: torch.zeros((len(batch), length), dtype=value.dtype) for key, value in batch[0].aligned.items()
    }
    for i, e in enumerate(batch):
        n = len(e.input_ids)
        ids[i, :n], labels[i, :n], attention[i, :n] = e.input_ids, e.labels, 1
        for key, value in e.aligned.items():
            aligned[key][i, :n] = value
    return {
        "input_ids": ids,
        "labels": labels,
        "attention_mask": attention,
        **aligned,
        **join_rows([e.vision for e in batch]),
    }


def _epoch_batches(examples: list[SFTExample], size: int, rng: random.Random) -> list[list[SFTExample]]:
    """Shuffled batches, each all-image or all-text (a VLM batch needs an image for every row or none)."""
    batches = []
    for group in ([e for e in examples if e.vision], [e for e in examples if not e.vision]):
        order = list(range(len(group)))
        rng.shuffle(order)
        batches += [[group[i] for i in order[s : s + size]] for s in range(0, len(order), size)]
    rng.shuffle(batches)
    return batches


def sft_train(
    policy: LoadedPolicy,
    problems: list[Any],
    targets: list[str],
    cfg: SFTConfig,
    rationales: list[str] | None = None,
    prompt_source: PromptSource | None = None,
    accelerator: Accelerator | None = None,
    hooks: TrainHooks | None = None,
    label: str = "sft",
) -> list[float]:
    """Fine-tune `policy.model` in place; returns the mean loss of each epoch (over every rank).

    Under several processes each rank takes every world-th batch (ranks with one batch fewer repeat one
    with zero weight, so collective steps line up); the last accumulation window of an epoch steps even when
    short. `accelerator` is the run's (one per run); without it one is made from `cfg.mixed_precision`.
    `hooks`: a progress bar (loss), and a stop request ends training after the next optimizer step
    (`StopRequested`; the stage keeps no checkpoint, so a rerun starts it over).
    """
    examples = build_examples(policy, problems, targets, cfg, rationales, prompt_source)
    accelerator = accelerator or make_accelerator(cfg.mixed_precision)
    check_precision(accelerator, cfg.mixed_precision, "sft")
    params = [p for p in policy.model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    configure_deepspeed(accelerator, cfg.batch_size, cfg.gradient_accumulation_steps)
    model, optimizer = accelerator.prepare(policy.model, optimizer)
    accelerator.gradient_accumulation_steps = cfg.gradient_accumulation_steps
    params = [p for g in optimizer.param_groups for p in g["params"]]
    model.train()
    rng = random.Random(cfg.seed)
    pad_id = pad_token_id(policy)
    epoch_losses = []
    hooks = hooks or TrainHooks()
    per_epoch = len(shard(_epoch_batches(examples, cfg.batch_size, random.Random(cfg.seed)), accelerator))
    bar = hooks.progress(cfg.epochs * per_epoch, label, main=accelerator.is_main_process)
    for _ in range(cfg.epochs):
        batches = _epoch_batches(examples, cfg.batch_size, rng)
        mine = shard(batches, accelerator)
        real = len(shard(batches, accelerator, pad=False))
        losses = []
        for i, (sync, weight) in enumerate(accumulation_windows(len(mine), cfg.gradient_accumulation_steps)):
            inputs = {k: v.to(accelerator.device) for k, v in _collate(mine[i], pad_id).items()}
            with micro_step(accelerator, model, sync):
                loss = model(**inputs).loss
                accelerator.backward(loss * (weight if i < real else 0.0))
                if sync:
                    if cfg.max_grad_norm and not is_deepspeed(accelerator):
                        accelerator.clip_grad_norm_(params, cfg.max_grad_norm)
                    optimizer.step()
                    optimizer.zero_grad()
            if i < real:
                losses.append(loss.item())
            hooks.show(bar, loss=losses[-1] if losses else None)
            if sync and hooks.stop_requested(accelerator):
                bar.close()
                model.eval()
                raise StopRequested(bar.n, bar.total, f"{label} step")
        losses = gather_lists(accelerator, losses)
        epoch_losses.append(sum(losses) / max(len(losses), 1))
    bar.close()
    model.eval()
    precision = precision_summary(accelerator, model)
    accelerator.free_memory()
    if accelerator.is_main_process:
        out = Path(cfg.output_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "sft_metrics.json").write_text(
            json.dumps({"epoch_loss": epoch_losses, "precision": precision})
        )
    return epoch_losses
