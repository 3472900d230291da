"""Tiny offline models for tests and the demo: a locally trained BPE tokenizer, a Llama-architecture LM and a
LLaVA-architecture VLM (CLIP vision tower + tiny Llama). Nothing is downloaded; the same seed gives the same
weights and tokenizer. Usage: `python -m align.models.tiny --out DIR [--vlm]`.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import (
    CLIPImageProcessorPil,
    CLIPVisionConfig,
    LlamaConfig,
    LlamaForCausalLM,
    LlavaConfig,
    LlavaForConditionalGeneration,
    LlavaProcessor,
    PreTrainedTokenizerFast,
)

CORPUS = Path(__file__).with_name("tiny_corpus.txt")
IMAGE_TOKEN = "<image>"
SPECIAL_TOKENS = ["<pad>", "<s>", "<|end|>", "<|user|>", "<|assistant|>", "<|system|>", IMAGE_TOKEN]

# Content may be a string or a list of {"type": "image"} / {"type": "text"} parts (HF processor form).
# The assistant turn is wrapped in {% generation %} so TRL's `assistant_only_loss=True` can mask the prompt.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'assistant' %}<|assistant|>\n"
    "{% generation %}{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}{{ part['text'] }}{% endfor %}{% endif %}"
    "<|end|>{% endgeneration %}\n"
    "{% else %}<|{{ message['role'] }}|>\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}<image>\n{% else %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|end|>\n"
    "{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


@dataclass
class TinyConfig:
    """Sizes of the tiny models; defaults keep a forward+backward of 8x128 tokens in tens of ms on CPU."""

    vocab_size: int = field(default=1024, metadata={"help": "BPE vocabulary size (special tokens included)."})
    hidden_size: int = field(default=64, metadata={"help": "Width of the tiny Llama."})
    intermediate_size: int = field(default=128, metadata={"help": "MLP width of the tiny Llama."})
    num_layers: int = field(default=2, metadata={"help": "Decoder layers."})
    num_heads: int = field(default=4, metadata={"help": "Attention heads."})
    max_positions: int = field(default=1024, metadata={"help": "Maximum sequence length."})
    image_size: int = field(default=32, metadata={"help": "Square input size of the tiny vision tower."})
    patch_size: int = field(
        default=8, metadata={"help": "Patch size; (image_size/patch_size)^2 image tokens."}
    )
    vision_hidden: int = field(default=32, metadata={"help": "Width of the tiny CLIP vision tower."})


def train_bpe(
    vocab_size: int = 1024, special_tokens: list[str] = SPECIAL_TOKENS, corpus: Path = CORPUS
) -> Tokenizer:
    """A byte-level BPE (the `tokenizers` library) trained on the packaged corpus."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=special_tokens,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus.read_text(encoding="utf-8").splitlines(), trainer=trainer)
    return tok


def train_tokenizer(vocab_size: int = 1024, corpus: Path = CORPUS) -> PreTrainedTokenizerFast:
    """A byte-level BPE trained on the packaged corpus, with pad/eos, the image token and a chat template."""
    fast = PreTrainedTokenizerFast(
        tokenizer_object=train_bpe(vocab_size, SPECIAL_TOKENS, corpus),
        bos_token="<s>",
        eos_token="<|end|>",
        pad_token="<pad>",
        additional_special_tokens=[t for t in SPECIAL_TOKENS if t not in ("<pad>", "<s>", "<|end|>")],
        padding_side="left",
        model_max_length=1024,
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def _llama_config(tokenizer: PreTrainedTokenizerFast, cfg: TinyConfig) -> LlamaConfig:
    return LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=cfg.hidden_size,
        intermediate_size=cfg.intermediate_size,
        num_hidden_layers=cfg.num_layers,
        num_attention_heads=cfg.num_heads,
        num_key_value_heads=cfg.num_heads // 2,
        max_position_embeddings=cfg.max_positions,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )


def build_tiny_lm(out_dir: str | Path, seed: int = 0, config: TinyConfig | None = None) -> Path:
    """Save a tiny Llama causal LM and its tokenizer to `out_dir` (loadable with `from_pretrained`)."""
    cfg = config or TinyConfig()
    out = Path(out_dir)
    tokenizer = train_tokenizer(cfg.vocab_size)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(_llama_config(tokenizer, cfg))
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def build_tiny_vlm(out_dir: str | Path, seed: int = 0, config: TinyConfig | None = None) -> Path:
    """Save a tiny LLaVA (CLIP vision tower + tiny Llama) and its processor to `out_dir`."""
    cfg = config or TinyConfig()
    out = Path(out_dir)
    tokenizer = train_tokenizer(cfg.vocab_size)
    image_tokens = (cfg.image_size // cfg.patch_size) ** 2
    vision = CLIPVisionConfig(
        hidden_size=cfg.vision_hidden,
        intermediate_size=cfg.vision_hidden * 2,
        num_hidden_layers=2,
        num_attention_heads=2,
        image_size=cfg.image_size,
        patch_size=cfg.patch_size,
        projection_dim=cfg.vision_hidden,
    )
    vlm_config = LlavaConfig(
        vision_config=vision,
        text_config=_llama_config(tokenizer, cfg),
        image_token_index=tokenizer.convert_tokens_to_ids(IMAGE_TOKEN),
        image_seq_length=image_tokens,
        vision_feature_select_strategy="default",
        vision_feature_layer=-1,
        tie_word_embeddings=True,
    )
    torch.manual_seed(seed)
    model = LlavaForConditionalGeneration(vlm_config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    image_processor = CLIPImageProcessorPil(
        size={"shortest_edge": cfg.image_size},
        crop_size={"height": cfg.image_size, "width": cfg.image_size},
    )
    processor = LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=cfg.patch_size,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
        image_token=IMAGE_TOKEN,
        chat_template=CHAT_TEMPLATE,
    )
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Build a tiny offline LM (or VLM with --vlm).")
    parser.add_argument("--out", required=True, help="Folder to write the model and tokenizer/processor to.")
    parser.add_argument("--vlm", action="store_true", help="Build the tiny LLaVA VLM instead of the LM.")
    parser.add_argument("--seed", type=int, default=0, help="Weight initialisation seed.")
    args = parser.parse_args(argv)
    path = (build_tiny_vlm if args.vlm else build_tiny_lm)(args.out, seed=args.seed)
    print(f"wrote {'VLM' if args.vlm else 'LM'} to {path}")


if __name__ == "__main__":
    main()
