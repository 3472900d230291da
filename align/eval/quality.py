"""Rationale quality: what RL tends to break (repeats, unfinished sentences) and correction SFT repairs."""

from __future__ import annotations

import re
from collections.abc import Sequence

from align.text.sentences import split_sentences

_WORD = re.compile(r"\w+")


def _norm(sentence: str) -> str:
    return " ".join(_WORD.findall(sentence.lower()))


def repeated_sentence_rate(text: str) -> float:
    """Fraction of sentences that repeat an earlier sentence of the same text (case/punctuation ignored)."""
    sentences = [_norm(s.text) for s in split_sentences(text)]
    if not sentences:
        return 0.0
    seen: set[str] = set()
    repeats = 0
    for s in sentences:
        repeats += s in seen
        seen.add(s)
    return repeats / len(sentences)


def repeated_ngram_rate(text: str, n: int = 3) -> float:
    """Fraction of word n-grams that already occurred earlier in the text."""
    words = _WORD.findall(text.lower())
    grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    return 1 - len(set(grams)) / len(grams) if grams else 0.0


def is_incomplete(text: str) -> bool:
    """True when the last sentence does not end with terminal punctuation (or the text is empty)."""
    stripped = text.strip().rstrip("\"')]}\u201d\u2019")
    return not stripped or stripped[-1] not in ".!?"


def distinct_n(texts: Sequence[str], n: int = 2) -> float:
    """Distinct-n (Li et al., 2016): unique word n-grams / all word n-grams, across the texts."""
    grams = []
    for text in texts:
        words = _WORD.findall(text.lower())
        grams += [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0


def quality_summary(texts: Sequence[str]) -> dict[str, float]:
    """Means over rationales: repeated sentences, repeated trigrams, incomplete endings, distinct-1/2, length."""
    n = max(len(texts), 1)
    return {
        "repeated_sentence_rate": sum(repeated_sentence_rate(t) for t in texts) / n,
        "repeated_trigram_rate": sum(repeated_ngram_rate(t, 3) for t in texts) / n,
        "incomplete_rate": sum(is_incomplete(t) for t in texts) / n,
        "distinct_1": distinct_n(texts, 1),
        "distinct_2": distinct_n(texts, 2),
        "mean_words": sum(len(_WORD.findall(t)) for t in texts) / n,
        "mean_sentences": sum(len(split_sentences(t)) for t in texts) / n,
    }
