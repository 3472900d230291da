"""Response tokens: exact character ends for multi-byte characters (O(n) decodes), stop tokens from the model's
generation config, special tokens never sampled, and a pad sampled inside a response kept in it."""

import torch

from align.models import load_policy
from align.models.tokens import decode_with_char_ends, stop_token_ids, suppressed_token_ids
from align.rl.rewards import sentence_end_tokens
from align.text.sentences import split_sentences
from align.trainers.rollout import decode_responses, response_mask_from, sample_chunk

TEXT = "Il a dit “oui.” Elle est née. Super 🙂"


class CountingTokenizer:
    def __init__(self, tok):
        self.tok, self.calls = tok, 0

    def decode(self, ids, **kw):
        self.calls += 1
        return self.tok.decode(ids, **kw)


def test_sentence_ends_land_on_the_last_byte_token_of_a_multibyte_character(tiny_lm):
    tok = tiny_lm.tokenizer
    ids = tok(TEXT, add_special_tokens=False)["input_ids"]
    counting = CountingTokenizer(tok)
    text, ends = decode_with_char_ends(counting, ids)
    assert text == tok.decode(ids) == TEXT
    assert counting.calls <= 2 * len(ids) + 1  # O(n) short decodes, not O(n^2) prefixes
    spans = split_sentences(text)
    assert [s.text for s in spans] == ["Il a dit “oui.”", "Elle est née.", "Super 🙂"]
    found = sentence_end_tokens(ends, [s.end for s in spans])
    for span, index in zip(spans, found, strict=True):
        through = tok.decode(ids[: index + 1])
        assert "\ufffd" not in through and len(through) >= span.end  # this token completes the sentence
        assert len(tok.decode(ids[:index]).rstrip("\ufffd")) < span.end  # and no earlier token does
    # prefix decoding credits the first byte token of ” and 🙂 with the whole character (the old mapping)
    prefix_lengths = [len(tok.decode(ids[: i + 1])) for i in range(len(ids))]
    old = sentence_end_tokens(prefix_lengths, [s.end for s in spans])
    assert old[0] < found[0] and old[2] < found[2] and found[2] == len(ids) - 1


def test_a_cut_off_last_character_is_not_text(tiny_lm):
    tok = tiny_lm.tokenizer
    ids = tok("ok 🙂", add_special_tokens=False)["input_ids"]
    cut = ids[:-1]  # the emoji's last byte never sampled
    text, ends = decode_with_char_ends(tok, cut)
    assert text == "ok " and ends[-1] == 3 and len(ends) == len(cut)


def test_response_mask_ends_at_any_stop_token_and_keeps_a_sampled_pad():
    response = torch.tensor([[5, 9, 2, 0, 0], [5, 0, 6, 7, 8], [3, 4, 1, 7, 1]])
    mask = response_mask_from(response, [2, 1])
    assert mask.tolist() == [[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 1, 1, 0, 0]]


def test_qwen_stop_tokens_come_from_the_generation_config(tiny_family_path):
    policy = load_policy(str(tiny_family_path("qwen2")), dtype="float32")
    im_end, endoftext = policy.tokenizer.convert_tokens_to_ids(["<|im_end|>", "<|endoftext|>"])
    assert stop_token_ids(policy) == [im_end, endoftext]
    assert policy.tokenizer.convert_tokens_to_ids("<|im_start|>") in suppressed_token_ids(policy)
    hello = policy.tokenizer("hello world", add_special_tokens=False)["input_ids"]
    response = torch.tensor([hello + [im_end, endoftext, endoftext]])
    mask = response_mask_from(response, stop_token_ids(policy))
    texts, ends = decode_responses(policy.tokenizer, response, mask, stop_token_ids(policy))
    assert texts == ["hello world"] and ends[0][len(hello) - 1] == len("hello world")
    assert mask.sum() == len(hello) + 1


def test_generation_never_samples_image_or_chat_tokens(tiny_vlm):
    from align.data import load_sample_scienceqa

    image_id = tiny_vlm.tokenizer.convert_tokens_to_ids("<image>")
    user_id = tiny_vlm.tokenizer.convert_tokens_to_ids("<|user|>")
    assert {image_id, user_id} <= set(suppressed_token_ids(tiny_vlm))
    with torch.no_grad():  # make the placeholders by far the likeliest tokens
        tiny_vlm.model.get_output_embeddings().weight[[image_id, user_id]] *= 200
    problems = [p for p in load_sample_scienceqa("train") if p.image][:2]
    torch.manual_seed(0)
    chunk = sample_chunk(tiny_vlm, problems, 2, {"max_new_tokens": 12, "do_sample": True})
    response = chunk.input_ids[:, chunk.prompt_len :][chunk.response_mask.bool()]
    assert image_id not in response.tolist() and user_id not in response.tolist()
