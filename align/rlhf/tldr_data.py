"""TL;DR summarisation data: SFT pairs, preference pairs and RL prompts.

Read in two schemas each:
- SFT: `trl-lib/tldr` (`prompt` = "SUBREDDIT: r/...\\n\\nTITLE: ...\\n\\nPOST: ...\\n\\nTL;DR:", `completion` =
  " summary") and CarperAI's `openai_summarize_tldr` (`prompt` ending in "TL;DR:", `label` = the summary).
- Preferences: `trl-lib/tldr-preference` (`prompt`, `chosen`, `rejected`, completions after the prompt) and
  CarperAI's `openai_summarize_comparisons` (`prompt` without "TL;DR:", `chosen`/`rejected` = "TL;DR: ...").
Both become the trl-lib form: the prompt ends in "TL;DR:", completions start with one space.
"""

from __future__ import annotations

from pathlib import Path

from align.data.errors import DatasetFormatError
from align.recipe_config import ConfigError
from align.rlhf.records import PreferencePair, RLPrompt, SummaryPair
from align.rlhf.sources import load_table

TLDR_SFT_HUB_ID = "trl-lib/tldr"
TLDR_PREFERENCE_HUB_ID = "trl-lib/tldr-preference"
MARKER = "TL;DR:"


def normalise_prompt(prompt: str) -> str:
    """The post ending in exactly one "TL;DR:" (CarperAI comparison prompts have none)."""
    body = prompt.rstrip()
    if body.endswith(MARKER):
        return body
    return body + "\n" + MARKER


def normalise_completion(text: str) -> str:
    """A completion without a leading "TL;DR:" and with exactly one leading space."""
    text = text.strip()
    if text.startswith(MARKER):
        text = text[len(MARKER) :].strip()
    return " " + text


def load_summaries(source: str | Path, split: str) -> list[SummaryPair]:
    """Post/summary pairs of one split: `prompt` + `completion` (trl-lib) or `prompt` + `label` (CarperAI)."""
    table = load_table(source, split, ("prompt",))
    first = table.rows[0]
    column = "completion" if "completion" in first else "label" if "label" in first else None
    if column is None:
        raise table.error(
            0,
            f"missing column 'completion' (or CarperAI's 'label'); the rows have {sorted(first)}",
            "completion",
        )
    return [
        SummaryPair(
            f"{split}-{k}",
            normalise_prompt(table.text(k, "prompt")),
            normalise_completion(table.text(k, column)),
        )
        for k in range(len(table.rows))
    ]


def load_preferences(source: str | Path, split: str) -> list[PreferencePair]:
    """Preference pairs of one split (`prompt`, `chosen`, `rejected` as strings); identical pairs are dropped."""
    table = load_table(source, split, ("prompt", "chosen", "rejected"))
    out = []
    for k in range(len(table.rows)):
        chosen, rejected = (normalise_completion(table.text(k, c)) for c in ("chosen", "rejected"))
        if chosen != rejected:
            out.append(
                PreferencePair(f"{split}-{k}", normalise_prompt(table.text(k, "prompt")), chosen, rejected)
            )
    if not out:
        raise DatasetFormatError(
            table.where, f"split {split!r} has no pair whose chosen and rejected texts differ"
        )
    return out


def fit_prompt(prompt: str, tokenizer, max_tokens: int, prompt_id: str) -> str:
    """The prompt cut to `max_tokens` tokens by shortening the post and keeping its "TL;DR:" ending (as the
    paper's code does); an error naming the prompt when even the ending does not fit."""
    ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    if not max_tokens or len(ids) <= max_tokens:
        return prompt
    suffix = "\n" + MARKER
    body = prompt[: -len(MARKER)].rstrip()
    room = max_tokens - len(tokenizer(suffix, add_special_tokens=False)["input_ids"]) - 1
    if room <= 0:
        raise ConfigError(f"prompt {prompt_id!r}: max_prompt_tokens={max_tokens} leaves no room for the post")
    body_ids = tokenizer(body, add_special_tokens=False)["input_ids"][:room]
    return tokenizer.decode(body_ids, skip_special_tokens=True).rstrip() + suffix


def tldr_prompts(pairs: list[SummaryPair], tokenizer, max_prompt_tokens: int) -> list[RLPrompt]:
    """RL prompts (posts fitted to `max_prompt_tokens`); the reference is the human summary."""
    return [
        RLPrompt(p.id, fit_prompt(p.prompt, tokenizer, max_prompt_tokens, p.id), p.completion.strip())
        for p in pairs
    ]
