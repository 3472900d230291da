"""Rewards from sequence classifiers: the label chosen by name, logit or probability, reward models scored in
the format TRL's RewardTrainer trains on, NaN rejected with the sample named."""

import pytest
import torch

from align.rlhf.records import RLPrompt
from align.rlhf.rewards import BatchedSequenceReward, ClassifierScore, find_label, summary_text
from align.trainers.reward_fns import Sample

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def tiny_classifier(tmp_path_factory):
    from align.rlhf.tiny import TinyTextConfig, build_tiny_classifier, build_tiny_gpt2

    root = tmp_path_factory.mktemp("rlhf-cls")
    cfg = TinyTextConfig(vocab_size=400, max_positions=128)
    tok = build_tiny_gpt2(root / "lm", ["a good film", "a bad film"] * 20, config=cfg)
    return build_tiny_classifier(root / "cls", tok, labels=("NEGATIVE", "POSITIVE"), config=cfg)


def test_label_found_by_name_and_logit_or_prob(tiny_classifier):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    assert find_label({0: "NEGATIVE", 1: "POSITIVE"}, "positive", "m") == 1
    texts = ["a good film", "a bad film film"]
    model = AutoModelForSequenceClassification.from_pretrained(tiny_classifier).eval()
    tok = AutoTokenizer.from_pretrained(tiny_classifier)
    with torch.no_grad():
        logits = model(**tok(texts, return_tensors="pt", padding=True)).logits
    logit = ClassifierScore(str(tiny_classifier), "Positive", "logit").score_texts(texts)
    prob = ClassifierScore(str(tiny_classifier), "NEGATIVE", "prob").score_texts(texts)
    assert logit == pytest.approx(logits[:, 1].tolist(), abs=1e-5)
    assert prob == pytest.approx(torch.softmax(logits, -1)[:, 0].tolist(), abs=1e-5)


def test_unknown_label_or_unnamed_label_is_an_error(tiny_classifier):
    with pytest.raises(ValueError, match=r"no label 'joy'.*\['NEGATIVE', 'POSITIVE'\]"):
        ClassifierScore(str(tiny_classifier), "joy")
    with pytest.raises(ValueError, match="has 2 labels"):
        ClassifierScore(str(tiny_classifier), "")


def test_nan_reward_is_an_error_naming_the_prompt():
    reward = BatchedSequenceReward(lambda prompts, texts: [1.0, float("nan")])
    prompts = [RLPrompt("p-0", "x"), RLPrompt("p-7", "y")]
    samples = [Sample(p, "text", [1, 2, 3]) for p in prompts]
    with pytest.raises(ValueError, match=r"prompt 'p-7' is nan"):
        reward(samples)
    ok = BatchedSequenceReward(lambda prompts, texts: [2.0, -1.0])(samples)
    assert [r.rewards.tolist() for r in ok] == [[0.0, 0.0, 2.0], [0.0, 0.0, -1.0]]


def test_reward_model_scores_what_reward_trainer_trains_on(tmp_path):
    """The PPO-time text of a (prompt, completion) pair tokenises exactly as TRL's RewardTrainer tokenises the
    pair's chosen side."""
    from datasets import Dataset
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from trl import RewardConfig, RewardTrainer

    from align.rlhf.tiny import TinyTextConfig, build_tiny_gpt2

    path = build_tiny_gpt2(
        tmp_path / "lm",
        ["SUBREDDIT: r/dogs POST: my dog barks TL;DR: dog barks"] * 20,
        config=TinyTextConfig(vocab_size=400, max_positions=128),
    )
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=1)
    prompt, chosen = "SUBREDDIT: r/dogs\n\nPOST: my dog barks\n\nTL;DR:", " dog barks"
    trainer = RewardTrainer(
        model=model,
        args=RewardConfig(
            output_dir=str(tmp_path / "rm"), report_to=[], use_cpu=True, bf16=False, max_length=128
        ),
        train_dataset=Dataset.from_dict({"prompt": [prompt], "chosen": [chosen], "rejected": [" cat"]}),
        processing_class=tok,
    )
    trained_ids = trainer.train_dataset[0]["chosen_ids"]
    assert tok(summary_text(prompt, chosen, tok.eos_token))["input_ids"] == trained_ids


def test_sequence_reward_sits_on_the_last_generated_token_only():
    """Padding on both sides: the prompt's left padding never reaches the reward function, and the columns
    after a response's stop token are padding; the scalar lands on the last generated token."""
    from align.trainers.reward_fns import SequenceReward

    reward = SequenceReward(lambda problem, text: 5.0)
    ended = Sample("p", "ab", [1, 2, 2, 2, 2], length=3)  # 2 tokens + stop token, then 2 padding columns
    full = Sample("p", "abcde", [1, 2, 3, 4, 5], length=5)  # ran to max_new_tokens
    legacy = Sample("p", "abc", [1, 2, 3])  # no length: every column is generated
    out = [r.rewards.tolist() for r in reward([ended, full, legacy])]
    assert out == [[0, 0, 5.0, 0, 0], [0, 0, 0, 0, 5.0], [0, 0, 5.0]]
