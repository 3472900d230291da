"""The typed records of the RLHF recipes: RL prompts, SFT pairs, preference pairs and labelled reviews."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class RLPrompt:
    """A plain-text RL prompt (an IMDB review prefix, a TL;DR post ending in "TL;DR:") with the reference text
    its samples are compared against (the rest of the review, the human summary). `image` is always None: the
    PPO trainer groups VLM batches by it."""

    id: str
    prompt: str
    reference: str = ""
    image: Path | None = None


@dataclass(frozen=True)
class Review:
    """One labelled review (`stanfordnlp/imdb`: `text`, `label` 0 negative / 1 positive)."""

    id: str
    text: str
    label: int


@dataclass(frozen=True)
class SummaryPair:
    """A post and its human summary (`trl-lib/tldr`: `prompt` ends in "TL;DR:", `completion` starts with a
    space)."""

    id: str
    prompt: str
    completion: str


@dataclass(frozen=True)
class PreferencePair:
    """A post with a preferred and a rejected summary (`trl-lib/tldr-preference`)."""

    id: str
    prompt: str
    chosen: str
    rejected: str
