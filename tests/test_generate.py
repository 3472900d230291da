"""Batched, image-aware sampling returns k completions per problem in problem order."""

from align.data import load_sample_scienceqa
from align.generate import SamplingConfig, generate_texts


def test_generate_texts_k_samples_per_problem_mixed_images(tiny_vlm):
    problems = load_sample_scienceqa("train")[:4] + load_sample_scienceqa("train")[10:12]
    assert any(p.image for p in problems) and any(not p.image for p in problems)
    out = generate_texts(tiny_vlm, problems, SamplingConfig(num_samples=3, max_new_tokens=5, batch_size=2))
    assert len(out) == len(problems) and all(len(samples) == 3 for samples in out)
    greedy = SamplingConfig(num_samples=1, max_new_tokens=5, do_sample=False)
    assert generate_texts(tiny_vlm, problems, greedy) == generate_texts(tiny_vlm, problems, greedy)
