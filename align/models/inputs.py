"""Turn prompts (and optional images) into model inputs for generation: left-padded, images through the
processor, the chat template applied when asked."""

from __future__ import annotations

from pathlib import Path

from PIL import Image
from transformers import BatchEncoding

from align.models.loading import LoadedPolicy


def render_chat(policy: LoadedPolicy, prompt: str, has_image: bool) -> str:
    """The prompt as one user turn of the policy's chat template, with the image placeholder if any."""
    content = ([{"type": "image"}] if has_image else []) + [{"type": "text", "text": prompt}]
    template_owner = policy.processor if policy.is_vlm else policy.tokenizer
    return template_owner.apply_chat_template(
        [{"role": "user", "content": content}], tokenize=False, add_generation_prompt=True
    )


def encode(
    policy: LoadedPolicy,
    prompts: list[str],
    images: list[Path | str | None] | None = None,
    chat: bool = True,
) -> BatchEncoding:
    """Batch-encode prompts for generation (left padding).

    For a VLM, a prompt with an image gets the image placeholder (through the chat template when `chat`),
    and the images go through the processor; in one batch either every prompt has an image or none has
    (HF processors need one image per placeholder). For an LM, images must be None.
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
    texts = [render_chat(policy, p, h) if chat else p for p, h in zip(prompts, has, strict=True)]
    policy.tokenizer.padding_side = "left"
    if policy.is_vlm and all(has):
        pil = [Image.open(img).convert("RGB") for img in images]
        return policy.processor(images=pil, text=texts, return_tensors="pt", padding=True)
    return policy.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=not chat)
