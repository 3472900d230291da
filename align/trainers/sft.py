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
    mixed_precision: str = field(
        default="no", metadata={"help": "accelerate mixed precision: no, fp16, bf16."}
    )
    seed: int = field(default=0, metadata={"help": "Seed for the example order."})


@dataclass
class SFTExample:
    input_ids: torch.Tensor
    labels: torch.Tensor
    pixel_values: torch.Tensor | None


def build_examples(
    policy: LoadedPolicy,
    problems: list[Any],
    targets: list[str],
    cfg: SFTConfig,
    rationales: list[str] | None = None,
    prompt_source: PromptSource | None = None,
) -> list[SFTExample]:
    """Tokenise prompt + target (+ EOS); labels are -100 on the prompt. Prompts come from `prompt_source`,
    or else the MM-CoT `cfg.prompt_format` (`rationales` feed the QCMG-A format)."""
    if len(problems) != len(targets):
        raise ValueError(f"{len(problems)} problems but {len(targets)} targets")
    examples = []
    tok = policy.tokenizer
    for k, (problem, target) in enumerate(zip(problems, targets, strict=True)):
        if prompt_source is not None:
            prompt_k = as_prompt(prompt_source(problem))
        else:
            text = build_prompt(problem, cfg.prompt_format, rationales[k] if rationales else None)
            prompt_k = Prompt(text, problem.image)
        image = prompt_k.image if policy.is_vlm else None
        prompt = encode(policy, [prompt_k.text], [image] if image else None, chat=cfg.chat)
        target_ids = tok(target, add_special_tokens=False)["input_ids"][: cfg.max_target_tokens] + [
            tok.eos_token_id
        ]
        ids = torch.cat([prompt["input_ids"][0], torch.tensor(target_ids)])
        labels = ids.clone()
        labels[: prompt["input_ids"].shape[1]] = -100
        pixels = prompt.get("pixel_values")
        examples.append(SFTExample(ids, labels, pixels[0] if pixels is not None else None))
    return examples


def _collate(batch: list[SFTExample], pad_id: int) -> dict[str, torch.Tensor]:
    length = max(len(e.input_ids) for e in batch)
    ids = torch.full((len(batch), length), pad_id)
    labels = torch.full((len(batch), length), -100)
    attention = torch.zeros((len(batch), length), dtype=torch.long)
    for i, e in enumerate(batch):
        n = len(e.input_ids)
        ids[i, :n], labels[i, :n], attention[i, :n] = e.input_ids, e.labels, 1
    out = {"input_ids": ids, "labels": labels, "attention_mask": attention}
    if batch[0].pixel_values is not None:
        out["pixel_values"] = torch.stack([e.pixel_values for e in batch])
    return out


def sft_train(
    policy: LoadedPolicy,
    problems: list[Any],
    targets: list[str],
    cfg: SFTConfig,
    rationales: list[str] | None = None,
    prompt_source: PromptSource | None = None,
) -> list[float]:
    """Fine-tune `policy.model` in place; returns the mean loss of each epoch."""
    examples = build_examples(policy, problems, targets, cfg, rationales, prompt_source)
    groups = [
        [e for e in examples if e.pixel_values is not None],
        [e for e in examples if e.pixel_values is None],
    ]
    accelerator = Accelerator(
        gradient_accumulation_steps=cfg.gradient_accumulation_steps, mixed_precision=cfg.mixed_precision
    )
    params = [p for p in policy.model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    model, optimizer = accelerator.prepare(policy.model, optimizer)
    model.train()
    rng = random.Random(cfg.seed)
    epoch_losses = []
    for _ in range(cfg.epochs):
        batches = []
        for group in groups:
            order = list(range(len(group)))
            rng.shuffle(order)
            batches += [
                [group[i] for i in order[s : s + cfg.batch_size]]
                for s in range(0, len(order), cfg.batch_size)
            ]
        rng.shuffle(batches)
        losses = []
        for batch in batches:
            inputs = {
                k: v.to(accelerator.device) for k, v in _collate(batch, policy.tokenizer.pad_token_id).items()
            }
            with accelerator.accumulate(model):
                loss = model(**inputs).loss
                accelerator.backward(loss)
                if accelerator.sync_gradients and cfg.max_grad_norm:
                    accelerator.clip_grad_norm_(params, cfg.max_grad_norm)
                optimizer.step()
                optimizer.zero_grad()
            losses.append(loss.item())
        epoch_losses.append(sum(losses) / max(len(losses), 1))
    model.eval()
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "sft_metrics.json").write_text(json.dumps({"epoch_loss": epoch_losses}))
    return epoch_losses
