"""Rationale-quality metrics on hand-made cases."""

import pytest

from align.eval.quality import (
    distinct_n,
    is_incomplete,
    quality_summary,
    repeated_ngram_rate,
    repeated_sentence_rate,
)


def test_repeated_sentences_ignore_case_and_punctuation():
    assert repeated_sentence_rate("Magnets attract. MAGNETS attract! Iron is a metal.") == pytest.approx(
        1 / 3
    )
    assert repeated_sentence_rate("") == 0.0
    assert repeated_sentence_rate("One. Two. Three.") == 0.0


def test_incomplete_final_sentence():
    assert is_incomplete("The answer is") and is_incomplete("") and is_incomplete("It is (A")
    assert not is_incomplete("The answer is (A).") and not is_incomplete('He said "stop."')


def test_ngrams_and_distinct():
    assert repeated_ngram_rate("a b c a b c") == pytest.approx(1 - 3 / 4)
    assert distinct_n(["a b", "a b"], 2) == 0.5 and distinct_n([], 2) == 0.0
    summary = quality_summary(["A b. A b.", "C d e"])
    assert summary["incomplete_rate"] == 0.5 and summary["repeated_sentence_rate"] == 0.25
