"""Text utilities for rationales: sentence splitting with character spans."""

from align.text.sentences import Sentence, dedupe_sentences, sentence_texts, split_sentences

__all__ = ["Sentence", "dedupe_sentences", "sentence_texts", "split_sentences"]
