"""Sentence splitting for chain-of-thought rationales, with character spans.

ARES scores each sentence of a rationale and puts the reward on the sentence's last token, so the splitter
must (a) not break on abbreviations (Mr., e.g., U.S.), decimals (1.9), initials (J. K.) or enumeration
markers (1. 2.), (b) keep closing quotes and brackets with their sentence, (c) accept a last sentence that
lacks final punctuation, and (d) report where each sentence sits in the original string.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Lower-cased, without the final period. Dotted forms ("e.g", "u.s") are matched on the whole token. Words that
# are also ordinary English words ("no", "sat", "sun", "min") are left out on purpose: "The answer is no." ends.
ABBREVIATIONS = frozenset(
    """
    mr mrs ms dr prof sr jr st mt ft vs etc e.g i.e cf al approx fig figs vol eq eqs dept
    inc ltd corp jan feb apr jun jul aug sep sept oct nov dec
    u.s u.k u.n a.m p.m ph.d b.c a.d b.c.e c.e gov sen capt lt sgt
    """.split()
)
# Abbreviations that also often end a sentence: a boundary when a capitalised word follows.
SENTENCE_FINAL_ABBREVIATIONS = frozenset({"etc", "a.m", "p.m", "b.c", "a.d", "b.c.e", "c.e"})
# Units and references that double as titles: written in lower case ("11.5 ft.", "see fig.") they end a
# sentence before a capitalised word; capitalised ("Mt. Everest", "St. Louis", "Fig. 2") they lead a name or
# a number and do not.
UNIT_OR_TITLE_ABBREVIATIONS = frozenset(
    {"ft", "st", "mt", "approx", "fig", "figs", "vol", "eq", "eqs", "dept"}
)
# Place abbreviations that end a sentence when the next word is a typical sentence opener
# ("... in the U.S. It is ..."), but not before a name ("the U.S. Army").
PLACE_ABBREVIATIONS = frozenset({"u.s", "u.k", "u.n"})
SENTENCE_OPENERS = frozenset(
    """
    the a an this that these those it its he she they we i you there here his her their our my
    so then but however therefore thus also in on at for if when because since as after before
    """.split()
)
# "No. 5", "Nos. 3": an abbreviation only before a number (a plain "no." ends "The answer is no.").
NUMBER_ABBREVIATIONS = frozenset({"no", "nos"})

_TERMINATORS = ".!?"
_CLOSERS = "\"')]}\u201d\u2019"
_OPENERS = "\"'([{\u201c\u2018"
_TOKEN_BEFORE = re.compile(r"(\S+)$")


@dataclass(frozen=True)
class Sentence:
    """A sentence and its span in the source text: `source[start:end] == text` (end exclusive)."""

    text: str
    start: int
    end: int


def _token_before(text: str, dot: int) -> str:
    """The whitespace-delimited token that ends at `dot` (exclusive), stripped of opening punctuation."""
    match = _TOKEN_BEFORE.search(text, 0, dot)
    return match.group(1).lstrip(_OPENERS) if match else ""


def _next_token(text: str, pos: int) -> str:
    match = re.compile(r"\s*(\S+)").match(text, pos)
    return match.group(1) if match else ""


def _is_initial(token: str) -> bool:
    return len(token) == 1 and token.isupper()


def _is_boundary_after_period(text: str, dot: int, sentence_start: int, nxt: str) -> bool:
    """Decide whether the period at `dot` ends a sentence, given the next token `nxt`."""
    token = _token_before(text, dot)
    lowered = token.lower()
    if lowered in ABBREVIATIONS:
        if lowered in PLACE_ABBREVIATIONS:
            return nxt.lower().strip(_OPENERS + ",") in SENTENCE_OPENERS
        if lowered in UNIT_OR_TITLE_ABBREVIATIONS:
            return token[:1].islower() and nxt[:1].isupper()
        return lowered in SENTENCE_FINAL_ABBREVIATIONS and nxt[:1].isupper()
    if lowered in NUMBER_ABBREVIATIONS and token[0].isupper() and nxt[:1].isdigit():
        return False
    if _is_initial(token):
        # "J. K. Rowling": an initial followed by another initial, or preceded by one.
        head = text[: dot - len(token)].rstrip()
        prev = _token_before(head, len(head)).rstrip(".")
        if _is_initial(nxt.rstrip(".")) and nxt.endswith(".") or _is_initial(prev):
            return False
    if token.isdigit() and len(token) <= 2:
        # Enumeration marker: the number opens the sentence ("1. Mix the water.") or follows a colon.
        before = text[sentence_start : dot - len(token)].strip()
        if not before or before.endswith(":"):
            return False
    return True


def split_sentences(text: str) -> list[Sentence]:
    """Split `text` into sentences with spans; whitespace between sentences belongs to none of them.

    A boundary is a run of `.`, `!` or `?` (plus closing quotes/brackets) followed by whitespace and a token
    that starts with an upper-case letter, a digit or an opening quote/bracket, or by the end of the text;
    line breaks are boundaries too. Periods of abbreviations, initials, decimals and enumeration markers are
    not boundaries.
    """
    sentences: list[Sentence] = []
    n = len(text)
    start = 0
    i = 0

    def emit(end: int) -> None:
        s, e = start, end
        while s < e and text[s].isspace():
            s += 1
        while e > s and text[e - 1].isspace():
            e -= 1
        if e > s:
            sentences.append(Sentence(text[s:e], s, e))

    while i < n:
        ch = text[i]
        if ch == "\n":
            emit(i)
            start = i + 1
            i += 1
            continue
        if ch in _TERMINATORS:
            j = i
            while j < n and text[j] in _TERMINATORS:
                j += 1
            while j < n and text[j] in _CLOSERS:
                j += 1
            if j < n and not text[j].isspace():
                i = j  # "1.9", "e.g.,", "U.S.-made": no boundary inside a token
                continue
            nxt = _next_token(text, j)
            opens_sentence = not nxt or nxt[0].isupper() or nxt[0].isdigit() or nxt[0] in _OPENERS
            boundary = opens_sentence
            if boundary and text[i] == "." and j - i == 1 + sum(c in _CLOSERS for c in text[i + 1 : j]):
                boundary = _is_boundary_after_period(text, i, start, nxt)
            if boundary:
                emit(j)
                start = j
            i = j
            continue
        i += 1
    emit(n)
    return sentences


def sentence_texts(text: str) -> list[str]:
    """The sentences of `text` as plain strings."""
    return [s.text for s in split_sentences(text)]


def dedupe_sentences(text: str) -> str:
    """`text` without exact repeats of earlier sentences (ARES removes them before asking for a correction)."""
    seen: set[str] = set()
    kept = []
    for sentence in sentence_texts(text):
        if sentence not in seen:
            kept.append(sentence)
            seen.add(sentence)
    return " ".join(kept)
