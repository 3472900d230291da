"""Tiny offline stand-ins for the RLHF recipes' hub models, built from configs with a tokenizer trained on our
sample text: a GPT-2 (absolute position embeddings, like `lvwerra/gpt2-imdb`) and a DistilBERT sentiment
classifier (like `lvwerra/distilbert-imdb`). Both start untrained; the recipes train them with the same code
a user runs on real data."""

from __future__ import annotations

import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from transformers import (
    AutoTokenizer,
    DistilBertConfig,
    DistilBertForSequenceClassification,
    GPT2Config,
    GPT2LMHeadModel,
)

from align.models.tiny import train_tokenizer


@dataclass
class TinyTextConfig:
    """Sizes of the tiny GPT-2 and DistilBERT."""

    vocab_size: int = field(default=2048, metadata={"help": "BPE vocabulary trained on the sample text."})
    hidden_size: int = field(default=64, metadata={"help": "Width of both models."})
    num_layers: int = field(default=2, metadata={"help": "Transformer layers."})
    num_heads: int = field(default=4, metadata={"help": "Attention heads."})
    max_positions: int = field(default=512, metadata={"help": "Context length (absolute positions)."})


def build_tiny_gpt2(
    out_dir: str | Path, texts: Iterable[str], seed: int = 0, config: TinyTextConfig | None = None
) -> Path:
    """Train a byte-level BPE on `texts`, save it beside a randomly initialised GPT-2 in `out_dir`."""
    cfg = config or TinyTextConfig()
    out = Path(out_dir)
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus.txt"
        corpus.write_text("\n".join(t.replace("\n", " ") for t in texts), encoding="utf-8")
        tokenizer = train_tokenizer(cfg.vocab_size, corpus)
    tokenizer.model_max_length = cfg.max_positions
    torch.manual_seed(seed)
    model = GPT2LMHeadModel(
        GPT2Config(
            vocab_size=len(tokenizer),
            n_positions=cfg.max_positions,
            n_embd=cfg.hidden_size,
            n_layer=cfg.num_layers,
            n_head=cfg.num_heads,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
    )
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def build_tiny_classifier(
    out_dir: str | Path,
    tokenizer_dir: str | Path,
    labels: tuple[str, ...] = ("NEGATIVE", "POSITIVE"),
    seed: int = 0,
    config: TinyTextConfig | None = None,
) -> Path:
    """A randomly initialised DistilBERT sequence classifier with named labels and the tokenizer of
    `tokenizer_dir`, saved to `out_dir`."""
    cfg = config or TinyTextConfig()
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    torch.manual_seed(seed)
    model = DistilBertForSequenceClassification(
        DistilBertConfig(
            vocab_size=len(tokenizer),
            dim=cfg.hidden_size,
            hidden_dim=cfg.hidden_size * 2,
            n_layers=cfg.num_layers,
            n_heads=cfg.num_heads,
            max_position_embeddings=cfg.max_positions,
            pad_token_id=tokenizer.pad_token_id,
            bos_token_id=tokenizer.bos_token_id,  # the tokenizer's (the trainer would align them, and warn)
            eos_token_id=tokenizer.eos_token_id,
            id2label=dict(enumerate(labels)),
            label2id={name: k for k, name in enumerate(labels)},
        )
    )
    out = Path(out_dir)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out
