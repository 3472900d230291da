"""RLHF data: the hub schemas (stanfordnlp/imdb, trl-lib/tldr, trl-lib/tldr-preference, CarperAI's), prompts
cut as in the paper's code, and clear errors for bad files."""

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from align.data.errors import DatasetFormatError
from align.data.samples import sample_root
from align.rlhf.imdb_data import imdb_prompts, load_reviews, review_prompt, train_val_split
from align.rlhf.records import RLPrompt
from align.rlhf.run import check_prompts_fit
from align.rlhf.tldr_data import fit_prompt, load_preferences, load_summaries, tldr_prompts


class WordTokenizer:
    """One token per whitespace-separated word (enough to check cuts by hand)."""

    def __call__(self, text, add_special_tokens=False):
        return {"input_ids": text.split()}

    def decode(self, ids, skip_special_tokens=True):
        return " ".join(ids)


def test_sample_data_has_the_hub_schemas():
    root = sample_root()
    train, test = load_reviews(root / "imdb", "train"), load_reviews(root / "imdb", "test")
    assert len(train) == 320 and len(test) == 120
    assert sum(r.label for r in train) == 160  # balanced
    sft = load_summaries(root / "tldr" / "sft", "train")
    assert all(p.prompt.startswith("SUBREDDIT: r/") and p.prompt.endswith("\n\nTL;DR:") for p in sft)
    assert all(p.completion.startswith(" ") and not p.completion.startswith("  ") for p in sft)
    prefs = load_preferences(root / "tldr" / "preference", "validation")
    assert prefs and all(p.chosen != p.rejected for p in prefs)


def test_missing_column_names_file_and_column(tmp_path):
    path = tmp_path / "train.parquet"
    pq.write_table(pa.table({"text": ["a fine film"], "stars": [9]}), path)
    with pytest.raises(DatasetFormatError, match=r"train\.parquet.*missing column 'label'"):
        load_reviews(tmp_path, "train")
    with pytest.raises(DatasetFormatError, match=r"no files for split 'test'"):
        load_reviews(tmp_path, "test")


def test_bad_label_names_the_record(tmp_path):
    (tmp_path / "train.jsonl").write_text(
        json.dumps({"text": "good", "label": 1}) + "\n" + json.dumps({"text": "meh", "label": "maybe"}) + "\n"
    )
    with pytest.raises(DatasetFormatError, match=r"train\.jsonl, record 'line 2', field 'label'.*'maybe'"):
        load_reviews(tmp_path / "train.jsonl", "train")
    (tmp_path / "ok.jsonl").write_text(json.dumps({"text": "good", "label": "pos"}) + "\n")
    assert load_reviews(tmp_path / "ok.jsonl", "train")[0].label == 1


def test_review_prompt_is_the_first_half_left_truncated():
    text = "one two three four five six<br /><br />seven eight nine ten"
    prompt, rest = review_prompt(text, WordTokenizer(), prompt_tokens=0)
    assert (prompt, rest) == ("one two three four five", "six seven eight nine ten")
    prompt, _ = review_prompt(text, WordTokenizer(), prompt_tokens=3)  # keep the last 3 tokens, as TRIL does
    assert prompt == "three four five"
    reviews = load_reviews(sample_root() / "imdb", "train")[:5]
    assert [p.id for p in imdb_prompts(reviews, WordTokenizer(), 64)] == [r.id for r in reviews]


def test_train_val_split_is_seeded_80_20():
    reviews = load_reviews(sample_root() / "imdb", "train")
    a_train, a_val = train_val_split(reviews, 42)
    b_train, _ = train_val_split(reviews, 42)
    c_train, _ = train_val_split(reviews, 43)
    assert (len(a_train), len(a_val)) == (256, 64) and a_train == b_train and a_train != c_train
    assert not {r.id for r in a_train} & {r.id for r in a_val}


def test_carperai_schemas_become_the_trl_form(tmp_path):
    (tmp_path / "valid.jsonl").write_text(
        json.dumps(
            {"prompt": "SUBREDDIT: r/dogs\nTITLE: x\nPOST: my dog barks\nTL;DR: ", "label": "dog barks"}
        )
        + "\n"
    )
    (tmp_path / "valid1.jsonl").write_text(
        json.dumps(
            {
                "prompt": "SUBREDDIT: r/dogs\nPOST: my dog barks",
                "chosen": "TL;DR: dog barks",
                "rejected": "TL;DR: cat",
            }
        )
        + "\n"
        + json.dumps({"prompt": "p", "chosen": "TL;DR: same", "rejected": "TL;DR: same"})
        + "\n"
    )
    (pair,) = load_summaries(tmp_path, "valid")
    assert pair.prompt.endswith("POST: my dog barks\nTL;DR:") and pair.completion == " dog barks"
    (pref,) = load_preferences(tmp_path, "valid1")  # the identical pair is dropped
    assert pref.prompt == "SUBREDDIT: r/dogs\nPOST: my dog barks\nTL;DR:"
    assert (pref.chosen, pref.rejected) == (" dog barks", " cat")
    with pytest.raises(DatasetFormatError, match="missing column 'completion'"):
        load_summaries(tmp_path, "valid1")


def test_fit_prompt_shortens_the_post_and_keeps_tldr():
    prompt = "POST: a b c d e f g h\nTL;DR:"
    fitted = fit_prompt(prompt, WordTokenizer(), 6, "p1")
    assert fitted.endswith("\nTL;DR:") and len(fitted.split()) <= 6 and fitted.startswith("POST: a")
    assert fit_prompt(prompt, WordTokenizer(), 0, "p1") == prompt
    with pytest.raises(ValueError, match="'p1'"):
        fit_prompt(prompt, WordTokenizer(), 1, "p1")
    pairs = load_summaries(sample_root() / "tldr" / "sft", "test")[:3]
    assert [p.reference for p in tldr_prompts(pairs, WordTokenizer(), 0)] == [
        p.completion.strip() for p in pairs
    ]


def test_prompt_longer_than_the_context_is_an_error():
    prompts = [RLPrompt("ok", "a b c"), RLPrompt("long-one", " ".join(["w"] * 60))]
    check_prompts_fit(WordTokenizer(), prompts[:1], 48, 64, "gpt2")
    with pytest.raises(ValueError, match=r"'long-one' has 60 tokens.*64-token context of 'gpt2'"):
        check_prompts_fit(WordTokenizer(), prompts, 48, 64, "gpt2")
