"""RLHF evaluation metrics against hand-computed values, the summary judge through the real SDK, and the
Welch interval against scipy."""

import math

import pytest
import torch

from align.eval.winrate import judge_win_rate
from align.rlhf.compare import welch_interval
from align.rlhf.judge import SUMMARY_JUDGE_VERSION, SummaryJudge
from align.rlhf.metrics import kl_per_sample, mean_std, rouge
from align.rlhf.records import RLPrompt
from teacher import CachedTeacher, FeedbackCache, make_teacher

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_kl_per_sample_hand_computed():
    # two-token vocabulary, one sample, two response steps (the second masked out)
    p = torch.tensor([[[0.75, 0.25], [0.5, 0.5]]])
    q = torch.tensor([[[0.5, 0.5], [0.9, 0.1]]])
    targets = torch.tensor([[1, 0]])
    mask = torch.tensor([[1.0, 0.0]])
    exact, k1 = kl_per_sample(p.log(), q.log(), targets, mask)
    assert exact.item() == pytest.approx(0.75 * math.log(0.75 / 0.5) + 0.25 * math.log(0.25 / 0.5))
    assert k1.item() == pytest.approx(math.log(0.25 / 0.5))  # the sampled token only: can be negative
    assert exact.item() >= 0


def test_exact_kl_is_the_mean_of_k1_over_sampled_tokens():
    torch.manual_seed(0)
    p, q = torch.softmax(torch.randn(1, 1, 5), -1), torch.softmax(torch.randn(1, 1, 5), -1)
    tokens = torch.multinomial(p[0, 0], 200_000, replacement=True)
    k1 = (p[0, 0].log() - q[0, 0].log())[tokens].mean()
    exact, _ = kl_per_sample(p.log(), q.log(), torch.zeros(1, 1, dtype=torch.long), torch.ones(1, 1))
    assert k1.item() == pytest.approx(exact.item(), abs=3e-3)


def test_rouge_hand_values():
    assert rouge(["my dog barks at night"], ["my dog barks at night"]) == pytest.approx(
        {"rouge1": 1.0, "rouge2": 1.0, "rougeL": 1.0}
    )
    assert rouge(["cats sleep"], ["my dog barks"])["rouge1"] == 0.0
    # 2 of 4 unigrams shared both ways: P = R = 0.5; bigrams: "dog barks" of 3 -> 1/3
    r = rouge(["the dog barks loudly"], ["a dog barks often"])
    assert r["rouge1"] == pytest.approx(0.5) and r["rouge2"] == pytest.approx(1 / 3)


def test_mean_std_and_welch_against_scipy():
    from scipy import stats

    assert mean_std([1.0, 3.0]) == pytest.approx((2.0, math.sqrt(2.0)))
    a, b = [1.0, 2.0, 4.0, 3.5, 2.2], [0.5, 0.7, 1.9, 1.1, 0.2]
    diff, lo, hi = welch_interval(a, b)
    ci = stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    assert diff == pytest.approx(sum(a) / 5 - sum(b) / 5)
    assert (lo, hi) == pytest.approx((ci.low, ci.high))


POST = RLPrompt(
    "post-1",
    "SUBREDDIT: r/dogs\n\nTITLE: Beagle barks\n\nPOST: My beagle barks at night.\n\nTL;DR:",
    "beagle barks at night",
)


def test_summary_judge_both_orders_through_the_sdk_and_cached(teacher_server, tmp_path):
    def responder(task, block):  # prefer the summary sharing more words with the post
        post = set(block["post"].lower().split())
        a, b = (len(post & set(block[k].lower().split())) for k in ("summary_A", "summary_B"))
        return {"verdict": "tie" if a == b else "A" if a > b else "B", "reason": "overlap"}

    teacher_server.responder = responder
    judge = SummaryJudge(
        CachedTeacher(
            make_teacher("openai:gpt-4o", base_url=teacher_server.openai_url),
            FeedbackCache(tmp_path / "j.sqlite"),
        )
    )
    prompts = [POST, RLPrompt("post-2", POST.prompt, "")]
    result = judge_win_rate(judge, prompts, ["my beagle barks at night", "cats"], ["cats", "my beagle barks"])
    assert teacher_server.total() == 4  # two pairs, both orders
    assert (result.wins, result.losses, result.win_rate) == (1, 1, 0.5)
    request = judge.build("judge", POST, "x", "y")
    assert request.prompt_version == SUMMARY_JUDGE_VERSION and "TL;DR" not in request.payload["gold"]
    judge_win_rate(judge, prompts, ["my beagle barks at night", "cats"], ["cats", "my beagle barks"])
    assert teacher_server.total() == 4  # the re-run came from the cache


def test_offline_judge_prefers_the_faithful_summary():
    judge = SummaryJudge(make_teacher("reference:lexical"))
    result = judge_win_rate(judge, [POST], ["my beagle barks at night"], ["need some advice please"])
    assert result.win_rate == 1.0


def _fake_run(root, rewards, texts):
    """A finished run folder: state with per-seed results, PPO metrics and held-out samples."""
    import json

    results = {}
    for seed, reward in zip((42, 43, 44), rewards, strict=True):
        results[f"seed{seed}"] = {
            "reward": reward,
            "kl": 1.0,
            "kl_k1": 1.0,
            "perplexity": 5.0,
            "distinct_1": 0.5,
            "distinct_2": 0.7,
            "mean_tokens": 10.0,
            "rouge1": 0.3,
            "rouge2": 0.1,
            "rougeL": 0.3,
            "win_rate": 0.5,
        }
        folder = root / f"seed{seed}"
        (folder / "ppo").mkdir(parents=True)
        (folder / "ppo" / "metrics.jsonl").write_text(
            "\n".join(json.dumps({"iteration": i, "reward": reward * i, "kl": i}) for i in range(3))
        )
        (folder / "samples.jsonl").write_text(
            json.dumps({"id": "post-1", "prompt": POST.prompt, "text": texts[0], "reward": 0.0}) + "\n"
        )
    (root / "rlhf_state.json").write_text(json.dumps({"done": list(results), "results": results}))
    return root


def test_compare_runs_table_welch_and_head_to_head(tmp_path):
    from align.rlhf.compare import compare_runs

    a = _fake_run(tmp_path / "ppo", [1.0, 1.2, 1.1], ["need some advice please"])
    b = _fake_run(tmp_path / "sppo", [2.0, 2.1, 1.9], ["my beagle barks at night"])
    out = compare_runs(
        {"ppo": a, "sppo": b}, tmp_path / "cmp", SummaryJudge(make_teacher("reference:lexical"))
    )
    d, lo, hi = out["differences"]["sppo"]["reward"]
    assert d == pytest.approx(0.9) and lo < d < hi and lo > 0
    h2h = out["head_to_head"]["sppo vs ppo"]
    assert h2h["n"] == 3 and h2h["win_rate"] == 1.0  # one prompt per seed, sppo's faithful summary wins
    text = (tmp_path / "cmp" / "comparison.md").read_text()
    assert "| sppo - ppo |" in text and "ROUGE-1" in text and (tmp_path / "cmp" / "comparison.png").is_file()
