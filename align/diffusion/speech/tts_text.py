"""Characters the TTS model reads, and turning a transcript into ids with a clear error for anything else."""

from __future__ import annotations

import torch

PAD = "_"
CHARACTERS = PAD + " abcdefghijklmnopqrstuvwxyz'.,?!-;:\""
CHAR_TO_ID = {c: i for i, c in enumerate(CHARACTERS)}


def normalise_transcript(text: str) -> str:
    """Lower case and single spaces; LJSpeech's normalised column already spells out numbers."""
    return " ".join(text.lower().replace("’", "'").replace("“", '"').replace("”", '"').split())


def encode_text(text: str, where: str = "transcript") -> list[int]:
    """Character ids of a transcript; an unknown character is an error naming it and `where`."""
    clean = normalise_transcript(text)
    unknown = sorted({c for c in clean if c not in CHAR_TO_ID or c == PAD})
    if unknown:
        raise ValueError(
            f"{where}: unknown character(s) {unknown} in {text!r}; the TTS model reads {CHARACTERS[1:]!r} "
            "(spell out numbers and symbols first)"
        )
    if not clean:
        raise ValueError(f"{where}: empty transcript")
    return [CHAR_TO_ID[c] for c in clean]


def batch_text(texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Padded ids (B, N) and lengths (B,)."""
    ids = [encode_text(t) for t in texts]
    lengths = torch.tensor([len(i) for i in ids])
    out = torch.zeros(len(ids), int(lengths.max()), dtype=torch.long)
    for row, seq in enumerate(ids):
        out[row, : len(seq)] = torch.tensor(seq)
    return out, lengths
