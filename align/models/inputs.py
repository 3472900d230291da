"""Turn prompts (and optional images) into model inputs for generation: left-padded, images through the
processor, the chat template applied when the policy has one (or when asked)."""

from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image
from transformers import BatchEncoding

from align.models.loading import LoadedPolicy


def _template_owner(policy: LoadedPolicy):
    return policy.processor if policy.is_vlm else policy.tokenizer


def has_chat_template(policy: LoadedPolicy) -> bool:
    """Whether the policy's processor (VLM) or tokenizer (LM) carries a chat template."""
    owner = _template_owner(policy)
    return bool(getattr(owner, "chat_template", None) or getattr(policy.tokenizer, "chat_template", None))


def use_chat(policy: LoadedPolicy, chat: bool | None) -> bool:
    """`chat` resolved: None means "when the policy has a chat template" (GPT-2 has none: raw text)."""
    if chat is None:
        return has_chat_template(policy)
    if chat and not has_chat_template(policy):
        raise ValueError(
            f"{policy.name_or_path} has no chat template; set chat to false (raw text prompts) or none (auto)"
        )
    return chat


def render_chat(policy: LoadedPolicy, prompt: str, has_image: bool) -> str:
    """The prompt as one user turn of the policy's chat template, with the image placeholder if any."""
    content = ([{"type": "image"}] if has_image else []) + [{"type": "text", "text": prompt}]
    return _template_owner(policy).apply_chat_template(
        [{"role": "user", "content": content}], tokenize=False, add_generation_prompt=True
    )


def encode(
    policy: LoadedPolicy,
    prompts: list[str],
    images: list[Path | str | None] | None = None,
    chat: bool | None = None,
) -> BatchEncoding:
    """Batch-encode prompts for generation (left padding).

    With the chat template (`chat` true, or None and the policy has one) each prompt is one user turn, with
    the image placeholder when it has an image; raw text otherwise (a raw VLM prompt with an image must
    contain the processor's image token itself). Images go through the processor; in one batch either
    every prompt has an image or none has (HF processors need one image per placeholder). For an LM,
    images must be None.
    """
    images = images or [None] * len(prompts)
    if len(images) != len(prompts):
        raise ValueError(f"got {len(prompts)} prompts but {len(images)} images")
    has = [img is not None for img in images]
    if not policy.is_vlm and any(has):
        raise ValueError(f"{policy.name_or_path} is a text-only model; it cannot take images")
    if any(has) and not all(has):
        raise ValueError(
            "a batch must have an image for every prompt or for none; group prompts by has-image"
        )
    chat = use_chat(policy, chat)
    texts = [render_chat(policy, p, h) if chat else p for p, h in zip(prompts, has, strict=True)]
    policy.tokenizer.padding_side = "left"
    if policy.is_vlm and all(has):
        token = getattr(policy.processor, "image_token", None)
        if not chat and token and not all(token in t for t in texts):
            raise ValueError(
                f"a raw (chat=false) prompt with an image must contain the image token {token!r}"
            )
        pil = [Image.open(img).convert("RGB") for img in images]
        return policy.processor(images=pil, text=texts, return_tensors="pt", padding=True)
    return policy.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=not chat)


def position_ids_from_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """Positions counted over attended tokens only, exactly as `generate()` builds them (0 on padding):
    with left padding a model with absolute position embeddings (GPT-2) sees in training the positions it
    saw while sampling."""
    return (attention_mask.long().cumsum(-1) - 1).masked_fill(attention_mask == 0, 0)
