"""IMDB reviews (`stanfordnlp/imdb`: `text`, `label`) and the sentiment task's prompts.

As in the symmetric-loss paper's setup (the authors' TRIL fork): the training reviews are shuffled with a seed
and split 80/20 into train and validation; a prompt is the first half of a review's words, truncated from the
left to `prompt_tokens` tokens (64 in the paper); the policy continues it.
"""

from __future__ import annotations

import random
from pathlib import Path

from align.rlhf.records import Review, RLPrompt
from align.rlhf.sources import load_table

IMDB_HUB_ID = "stanfordnlp/imdb"
LABEL_NAMES = {"neg": 0, "negative": 0, "pos": 1, "positive": 1}


def load_reviews(source: str | Path, split: str) -> list[Review]:
    """Reviews of one split (hub id, parquet file or folder in the hub's layout). Labels may be 0/1 or
    neg/pos; anything else is an error naming the record."""
    table = load_table(source, split, ("text", "label"))
    out = []
    for k in range(len(table.rows)):
        text = table.text(k, "text")
        label = raw = table.value(k, "label")
        if isinstance(label, str):
            label = LABEL_NAMES.get(label.strip().lower(), label)
            label = int(label) if isinstance(label, str) and label.strip() in ("0", "1") else label
        if label not in (0, 1) or isinstance(label, bool):
            raise table.error(k, f"label must be 0/1 or neg/pos, got {raw!r}", "label")
        out.append(Review(f"{split}-{k}", text, int(label)))
    return out


def train_val_split(reviews: list[Review], seed: int, train_fraction: float = 0.8) -> tuple[list, list]:
    """Shuffle with `seed` and cut: the first `train_fraction` for training, the rest for validation."""
    order = list(reviews)
    random.Random(seed).shuffle(order)
    cut = int(len(order) * train_fraction)
    return order[:cut], order[cut:]


def clean_review(text: str) -> str:
    """The review with IMDB's HTML line breaks turned into spaces."""
    return " ".join(text.replace("<br />", " ").replace("<br/>", " ").split())


def review_prompt(text: str, tokenizer, prompt_tokens: int, prompt_fraction: float = 0.5) -> tuple[str, str]:
    """(prompt, rest): the first `prompt_fraction` of the words, cut to its last `prompt_tokens` tokens."""
    words = clean_review(text).split()
    head = max(1, int(len(words) * prompt_fraction))
    prompt, rest = " ".join(words[:head]), " ".join(words[head:])
    ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    if prompt_tokens and len(ids) > prompt_tokens:
        prompt = tokenizer.decode(ids[-prompt_tokens:], skip_special_tokens=True).lstrip()
    return prompt, rest


def imdb_prompts(
    reviews: list[Review], tokenizer, prompt_tokens: int = 64, prompt_fraction: float = 0.5
) -> list[RLPrompt]:
    """RL prompts from reviews; the reference is the review's second half."""
    out = []
    for r in reviews:
        prompt, rest = review_prompt(r.text, tokenizer, prompt_tokens, prompt_fraction)
        out.append(RLPrompt(r.id, prompt, rest))
    return out
