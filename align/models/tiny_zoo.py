"""Tiny random models of the families users train, built offline from the real transformers classes: the test
model matrix. Each family gets its real architecture, its real processor class, and a locally trained BPE
tokenizer with the family's special tokens, stop tokens and chat-template shape (Qwen's ChatML with
`<|im_end|>` ending turns and `<|endoftext|>` padding, GPT-2's single `<|endoftext|>` and no template, ...).

`build_tiny_model(family, out_dir)`; families: `llama`, `qwen2`, `gpt2` (text) and `llava`, `qwen2_vl`,
`qwen2_5_vl`, `idefics3` (SmolVLM's architecture) (image-text-to-text). Usage:
`python -m align.models.tiny_zoo --family qwen2_vl --out DIR`.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import transformers as tf
from transformers import PreTrainedTokenizerFast

from align.models.processors import image_only_class
from align.models.tiny import TinyConfig, build_tiny_lm, build_tiny_vlm, train_bpe

QWEN_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>"]
QWEN_TOKENS += ["<|vision_pad|>", "<|image_pad|>", "<|video_pad|>"]
CHATML = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% else %}{{ part['text'] }}{% endif %}{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
IDEFICS_TOKENS = ["<|begin_of_text|>", "<end_of_utterance>", "<|finetune_pad|>", "<fake_token_around_image>"]
IDEFICS_TOKENS += ["<image>", "<global-img>"]
IDEFICS_CHAT = (
    "<|begin_of_text|>{% for message in messages %}{{ message['role'] | capitalize }}:"
    "{% if message['content'] is string %} {{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}<image>{% else %} {{ part['text'] }}{% endif %}{% endfor %}{% endif %}"
    "<end_of_utterance>\n{% endfor %}{% if add_generation_prompt %}Assistant:{% endif %}"
)
QWEN_IMAGE = {"patch_size": 8, "merge_size": 2, "temporal_patch_size": 2}
QWEN_PIXELS = {"min_pixels": 16 * 16, "max_pixels": 32 * 32}


def _tokenizer(special: list[str], cfg: TinyConfig, **roles: str) -> PreTrainedTokenizerFast:
    return PreTrainedTokenizerFast(
        tokenizer_object=train_bpe(cfg.vocab_size, special),
        padding_side="left",
        model_max_length=cfg.max_positions,
        **roles,
    )


def _text(cfg: TinyConfig, tok: PreTrainedTokenizerFast, **extra: Any) -> dict[str, Any]:
    return {
        "vocab_size": len(tok),
        "hidden_size": cfg.hidden_size,
        "intermediate_size": cfg.intermediate_size,
        "num_hidden_layers": cfg.num_layers,
        "num_attention_heads": cfg.num_heads,
        "num_key_value_heads": cfg.num_heads // 2,
        "max_position_embeddings": cfg.max_positions,
        **extra,
    }


def _save(model: Any, processor: Any, out: Path, eos: list[int], pad: int) -> Path:
    model.generation_config.eos_token_id = eos if len(eos) > 1 else eos[0]
    model.generation_config.pad_token_id = pad
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out


def build_tiny_qwen2(out_dir: str | Path, seed: int = 0, config: TinyConfig | None = None) -> Path:
    """A Qwen2 causal LM with a ChatML template; turns end with `<|im_end|>`, padding is `<|endoftext|>`."""
    cfg = config or TinyConfig()
    tok = _tokenizer(QWEN_TOKENS[:3], cfg, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    tok.chat_template = CHATML
    eos, pad = tok.convert_tokens_to_ids(["<|im_end|>", "<|endoftext|>"]), tok.pad_token_id
    torch.manual_seed(seed)
    model = tf.Qwen2ForCausalLM(tf.Qwen2Config(**_text(cfg, tok, tie_word_embeddings=True)))
    return _save(model, tok, Path(out_dir), eos, pad)


def build_tiny_gpt2(out_dir: str | Path, seed: int = 0, config: TinyConfig | None = None) -> Path:
    """A GPT-2 (absolute position embeddings) with GPT-2's tokenizer roles: `<|endoftext|>` is BOS and EOS,
    no pad token, no chat template (prompts are raw text)."""
    cfg = config or TinyConfig()
    tok = _tokenizer(["<|endoftext|>"], cfg, bos_token="<|endoftext|>", eos_token="<|endoftext|>")
    torch.manual_seed(seed)
    gpt2 = tf.GPT2Config(
        vocab_size=len(tok),
        n_embd=cfg.hidden_size,
        n_layer=cfg.num_layers,
        n_head=cfg.num_heads,
        n_positions=cfg.max_positions,
        bos_token_id=tok.eos_token_id,
        eos_token_id=tok.eos_token_id,
    )
    return _save(tf.GPT2LMHeadModel(gpt2), tok, Path(out_dir), [tok.eos_token_id], tok.eos_token_id)


def _qwen_vl(
    out_dir: str | Path, seed: int, cfg: TinyConfig, config_cls: type, model_cls: type, processor_cls: type
) -> Path:
    tok = _tokenizer(QWEN_TOKENS, cfg, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    ids = dict(zip(QWEN_TOKENS, tok.convert_tokens_to_ids(QWEN_TOKENS), strict=True))
    half = cfg.hidden_size // cfg.num_heads // 2  # M-RoPE splits half a head over (time, height, width)
    spatial = 3 * half // 8
    rope = {
        "rope_type": "default",
        "rope_theta": 10000.0,
        "mrope_section": [half - 2 * spatial, spatial, spatial],
    }
    vision: dict[str, Any] = {"depth": 2, "num_heads": 2, "spatial_merge_size": 2, "in_channels": 3}
    vision |= {"patch_size": QWEN_IMAGE["patch_size"], "temporal_patch_size": 2}
    if config_cls is tf.Qwen2VLConfig:
        vision |= {"embed_dim": cfg.vision_hidden, "hidden_size": cfg.hidden_size, "mlp_ratio": 2}
    else:  # Qwen2.5-VL: windowed attention in the vision tower, one full-attention block
        vision |= {"hidden_size": cfg.vision_hidden, "out_hidden_size": cfg.hidden_size}
        vision |= {
            "intermediate_size": cfg.vision_hidden * 2,
            "window_size": 32,
            "fullatt_block_indexes": [1],
        }
    model_config = config_cls(
        text_config=_text(
            cfg,
            tok,
            rope_parameters=rope,
            tie_word_embeddings=True,
            bos_token_id=ids["<|endoftext|>"],
            eos_token_id=ids["<|im_end|>"],
            pad_token_id=ids["<|endoftext|>"],
        ),
        vision_config=vision,
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=True,
    )
    torch.manual_seed(seed)
    model = model_cls(model_config)
    image_processor = tf.Qwen2VLImageProcessorPil(**QWEN_IMAGE, **QWEN_PIXELS)
    # built without its video processor (torchvision); its settings are written for full installs
    processor = image_only_class(processor_cls)(
        image_processor=image_processor, tokenizer=tok, chat_template=CHATML
    )
    processor._video_settings = {
        "video_processor_type": "Qwen2VLVideoProcessor",
        **QWEN_IMAGE,
        **QWEN_PIXELS,
        "image_mean": image_processor.image_mean,
        "image_std": image_processor.image_std,
    }
    eos = [ids["<|im_end|>"], ids["<|endoftext|>"]]
    return _save(model, processor, Path(out_dir), eos, ids["<|endoftext|>"])


def build_tiny_qwen2_vl(out_dir: str | Path, seed: int = 0, config: TinyConfig | None = None) -> Path:
    """A Qwen2-VL: 2-layer vision tower (8-pixel patches, 2x2 merge, M-RoPE) + a 2-layer Qwen2 decoder."""
    cfg = config or TinyConfig()
    return _qwen_vl(
        out_dir, seed, cfg, tf.Qwen2VLConfig, tf.Qwen2VLForConditionalGeneration, tf.Qwen2VLProcessor
    )


def build_tiny_qwen2_5_vl(out_dir: str | Path, seed: int = 0, config: TinyConfig | None = None) -> Path:
    """A Qwen2.5-VL (windowed vision attention) of the same size."""
    cfg = config or TinyConfig()
    return _qwen_vl(
        out_dir, seed, cfg, tf.Qwen2_5_VLConfig, tf.Qwen2_5_VLForConditionalGeneration, tf.Qwen2_5_VLProcessor
    )


def build_tiny_idefics3(out_dir: str | Path, seed: int = 0, config: TinyConfig | None = None) -> Path:
    """An Idefics3 (SmolVLM's architecture): SigLIP-style vision tower, pixel shuffle, Llama decoder; turns
    end with `<end_of_utterance>`. Image splitting is off: one global 32x32 image, 4 image tokens."""
    cfg = config or TinyConfig()
    tok = _tokenizer(
        IDEFICS_TOKENS,
        cfg,
        bos_token="<|begin_of_text|>",
        eos_token="<end_of_utterance>",
        pad_token="<|finetune_pad|>",
    )
    scale = 2
    image_tokens = (cfg.image_size // cfg.patch_size) ** 2 // scale**2
    model_config = tf.Idefics3Config(
        text_config={"model_type": "llama", **_text(cfg, tok, tie_word_embeddings=True)},
        vision_config={
            "hidden_size": cfg.vision_hidden,
            "intermediate_size": cfg.vision_hidden * 2,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "image_size": cfg.image_size,
            "patch_size": cfg.patch_size,
        },
        image_token_id=tok.convert_tokens_to_ids("<image>"),
        scale_factor=scale,
        pad_token_id=tok.pad_token_id,
        tie_word_embeddings=True,
    )
    torch.manual_seed(seed)
    model = tf.Idefics3ForConditionalGeneration(model_config)
    image_processor = tf.Idefics3ImageProcessorPil(
        do_image_splitting=False,
        size={"longest_edge": cfg.image_size},
        max_image_size={"longest_edge": cfg.image_size},
    )
    processor = tf.Idefics3Processor(
        image_processor=image_processor, tokenizer=tok, image_seq_len=image_tokens, chat_template=IDEFICS_CHAT
    )
    return _save(model, processor, Path(out_dir), [tok.eos_token_id], tok.pad_token_id)


TINY_FAMILIES: dict[str, Callable[..., Path]] = {
    "llama": build_tiny_lm,
    "qwen2": build_tiny_qwen2,
    "gpt2": build_tiny_gpt2,
    "llava": build_tiny_vlm,
    "qwen2_vl": build_tiny_qwen2_vl,
    "qwen2_5_vl": build_tiny_qwen2_5_vl,
    "idefics3": build_tiny_idefics3,
}
VLM_FAMILIES = ("llava", "qwen2_vl", "qwen2_5_vl", "idefics3")


def build_tiny_model(
    family: str, out_dir: str | Path, seed: int = 0, config: TinyConfig | None = None
) -> Path:
    """Save a tiny random model of `family` and its tokenizer/processor to `out_dir`."""
    if family not in TINY_FAMILIES:
        raise ValueError(f"unknown tiny model family {family!r}; expected one of {sorted(TINY_FAMILIES)}")
    return TINY_FAMILIES[family](out_dir, seed=seed, config=config)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Build a tiny random model of one family, offline.")
    parser.add_argument("--family", required=True, choices=sorted(TINY_FAMILIES))
    parser.add_argument("--out", required=True, help="Folder to write the model and tokenizer/processor to.")
    parser.add_argument("--seed", type=int, default=0, help="Weight initialisation seed.")
    args = parser.parse_args(argv)
    print(f"wrote {args.family} to {build_tiny_model(args.family, args.out, args.seed)}")


if __name__ == "__main__":
    main()
