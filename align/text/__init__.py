"""Text utilities for rationales: sentence splitting with character spans."""

from align.text.sentences import Sentence, sentence_texts, split_sentences

__all__ = ["Sentence", "sentence_texts", "split_sentences"]
