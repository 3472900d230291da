"""Token-level facts of a policy that sampling and reward placement rely on: which tokens end a response,
which may never be sampled (image placeholders, chat markers), and the exact character span of every
sampled token in the decoded response."""

from __future__ import annotations

from typing import Any

REPLACEMENT_CHAR = "\ufffd"


def _ids(value: Any) -> list[int]:
    if value is None:
        return []
    if isinstance(value, int):
        return [value]
    return [int(v) for v in value]


def stop_token_ids(policy: Any) -> list[int]:
    """Every id that ends a response: the model's generation config (Qwen2-VL ends turns with `<|im_end|>`
    and lists `<|endoftext|>` too) and the tokenizer's EOS, in that order, without repeats."""
    out: list[int] = []
    generation = getattr(policy.model, "generation_config", None)
    for value in (getattr(generation, "eos_token_id", None), policy.tokenizer.eos_token_id):
        out += [i for i in _ids(value) if i not in out]
    if not out:
        raise ValueError(
            f"{policy.name_or_path}: neither the generation config nor the tokenizer names an EOS"
        )
    return out


def pad_token_id(policy: Any) -> int:
    """The id generation pads finished rows with: the generation config's, the tokenizer's, or the EOS."""
    generation = getattr(policy.model, "generation_config", None)
    for value in (getattr(generation, "pad_token_id", None), policy.tokenizer.pad_token_id):
        if value is not None:
            return int(value)
    return stop_token_ids(policy)[0]


def suppressed_token_ids(policy: Any) -> list[int]:
    """Ids a response must never contain: every special or added-special token (image/video placeholders,
    `<fake_token_around_image>`, chat-turn markers, BOS, pad) except the stop tokens. A sampled `<image>`
    would break the next forward pass (`Image features and image tokens do not match`)."""
    tok = policy.tokenizer
    ids = set(_ids(tok.all_special_ids))
    ids |= {i for i, added in tok.added_tokens_decoder.items() if getattr(added, "special", False)}
    config = getattr(policy.model, "config", None)
    for name in ("image_token_id", "image_token_index", "video_token_id", "vision_start_token_id"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value >= 0:
            ids.add(value)
    if policy.processor is not tok:  # a VLM processor's placeholder ids (Idefics3: image, fake-image, rows)
        for name, value in vars(policy.processor).items():
            if name.endswith(("_token_id", "_token_ids", "_col_ids")):
                values = value if isinstance(value, list | tuple) else [value]
                ids.update(v for v in values if isinstance(v, int) and v >= 0)
    stops = set(stop_token_ids(policy))
    vocab = len(tok)
    return sorted(i for i in ids if i not in stops and 0 <= i < vocab)


def generation_settings(policy: Any) -> dict[str, Any]:
    """`generate()` keyword arguments every sampler here shares: stop tokens, pad token, suppressed tokens."""
    settings: dict[str, Any] = {"eos_token_id": stop_token_ids(policy), "pad_token_id": pad_token_id(policy)}
    suppressed = suppressed_token_ids(policy)
    if suppressed:
        settings["suppress_tokens"] = suppressed
    return settings


def _decode(tokenizer: Any, ids: list[int]) -> str:
    return tokenizer.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)


def decode_with_char_ends(tokenizer: Any, ids: list[int]) -> tuple[str, list[int]]:
    """The decoded text of `ids` and, for each token, the length of the text once that token is decoded.

    Incremental decoding over a short sliding window (the way streaming detokenisers work): a token is only
    credited with text once the characters it completes are whole, so the token that completes a multi-byte
    character (`é`, `”`, an emoji split over byte tokens) is the one whose end covers it, and the cost is
    O(n) decodes of a few tokens each. If the pieces ever disagree with decoding the whole sequence (an
    unusual decoder), prefix decoding with the partial-character marker removed is used instead.
    """
    text, ends = "", []
    prefix, read = 0, 0
    for i in range(len(ids)):
        before = _decode(tokenizer, ids[prefix:read])
        after = _decode(tokenizer, ids[prefix : i + 1])
        if len(after) > len(before) and not after.endswith(REPLACEMENT_CHAR) and after.startswith(before):
            text += after[len(before) :]
            prefix, read = read, i + 1
        ends.append(len(text))
    full = _decode(tokenizer, ids)
    if text == full or text == full.rstrip(REPLACEMENT_CHAR):  # a cut-off last character is no text
        return text, ends
    return full, _prefix_char_ends(tokenizer, ids, len(full))


def _prefix_char_ends(tokenizer: Any, ids: list[int], total: int) -> list[int]:
    ends, best = [], 0
    for i in range(len(ids)):
        best = max(best, min(len(_decode(tokenizer, ids[: i + 1]).rstrip(REPLACEMENT_CHAR)), total))
        ends.append(best)
    return ends
