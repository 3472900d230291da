"""Tiny offline models: build, reload, determinism, LoRA reference, a VLM that really takes an image."""

import pytest
import torch

from align.data import build_prompt, load_sample_scienceqa
from align.models import LoraSettings, build_tiny_lm, build_tiny_vlm, encode, load_policy
from align.models.loading import resolve_kind


def _logits(policy, text="Question: Which is a metal?"):
    ids = policy.tokenizer([text], return_tensors="pt")
    with torch.no_grad():
        return policy.model(**ids).logits


def test_tiny_lm_reloads_with_same_logits(tiny_lm_path, tiny_lm):
    again = load_policy(str(tiny_lm_path), dtype="float32")
    assert not again.is_vlm and resolve_kind(str(tiny_lm_path)) == "causal"
    torch.testing.assert_close(_logits(tiny_lm), _logits(again))


def test_tiny_builders_are_deterministic(tmp_path):
    a = load_policy(str(build_tiny_lm(tmp_path / "a", seed=3)), dtype="float32")
    b = load_policy(str(build_tiny_lm(tmp_path / "b", seed=3)), dtype="float32")
    c = load_policy(str(build_tiny_lm(tmp_path / "c", seed=4)), dtype="float32")
    assert a.tokenizer.get_vocab() == b.tokenizer.get_vocab()
    torch.testing.assert_close(_logits(a), _logits(b))
    assert not torch.allclose(_logits(a), _logits(c))


def test_lora_disabled_adapter_gives_base_logits(tiny_lm_path, tiny_lm):
    policy = load_policy(str(tiny_lm_path), lora=LoraSettings(r=4, alpha=8, dropout=0.0), dtype="float32")
    assert policy.has_lora
    with torch.no_grad():  # make the adapter matter
        for name, p in policy.model.named_parameters():
            if "lora_B" in name:
                p.add_(0.5)
    assert not torch.allclose(_logits(policy), _logits(tiny_lm))
    with policy.reference():
        torch.testing.assert_close(_logits(policy), _logits(tiny_lm))
    trainable = [n for n, p in policy.model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)


def test_tiny_vlm_answers_a_sample_image_question(tiny_vlm_path):
    policy = load_policy(str(tiny_vlm_path), dtype="float32")
    assert policy.is_vlm and resolve_kind(str(tiny_vlm_path)) == "vlm"
    problems = [p for p in load_sample_scienceqa("train") if p.image][:2]
    batch = encode(policy, [build_prompt(p) for p in problems], [p.image for p in problems])
    assert batch["pixel_values"].shape[0] == 2
    image_token = policy.model.config.image_token_index
    assert (batch["input_ids"] == image_token).sum() == 2 * policy.model.config.image_seq_length
    out = policy.model.generate(**batch, max_new_tokens=6, do_sample=False)
    new = out[:, batch["input_ids"].shape[1] :]
    assert new.shape == (2, 6)
    assert all(isinstance(t, str) and t for t in policy.tokenizer.batch_decode(new))
    # the image really reaches the model: different pixels, different logits
    with torch.no_grad():
        a = policy.model(**batch).logits[:, -1]
        batch["pixel_values"] = batch["pixel_values"].flip(-1) + 1.0
        b = policy.model(**batch).logits[:, -1]
    assert not torch.allclose(a, b)


def test_encode_refuses_mixed_and_text_only_images(tiny_vlm_path, tiny_lm):
    vlm = load_policy(str(tiny_vlm_path), dtype="float32")
    problems = load_sample_scienceqa("train")
    with_image = next(p for p in problems if p.image)
    with pytest.raises(ValueError, match="for every prompt or for none"):
        encode(vlm, ["a", "b"], [with_image.image, None])
    with pytest.raises(ValueError, match="text-only"):
        encode(tiny_lm, ["a"], [with_image.image])
    text_only = encode(vlm, ["a question", "another question here"])
    assert text_only["input_ids"].shape[0] == 2 and (text_only["attention_mask"][:, -1] == 1).all()


def test_quantization_without_cuda_is_a_clear_error(tiny_lm_path):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(RuntimeError, match="bitsandbytes package and a CUDA GPU"):
        load_policy(str(tiny_lm_path), quantization="4bit")


def test_chat_template_marks_assistant_tokens(tiny_lm):
    out = tiny_lm.tokenizer.apply_chat_template(
        [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "fine"}],
        tokenize=True,
        return_dict=True,
        return_assistant_tokens_mask=True,
    )
    mask = out["assistant_masks"]
    assert 0 < sum(mask) < len(mask) and mask[-1] == 1 and mask[0] == 0


def test_tiny_vlm_builds_in_another_folder(tmp_path):
    path = build_tiny_vlm(tmp_path / "vlm", seed=1)
    assert (path / "config.json").is_file() and (path / "processor_config.json").is_file()


def test_saved_lora_adapter_reloads_trainable(tiny_lm_path, tmp_path):
    policy = load_policy(str(tiny_lm_path), lora=LoraSettings(r=4, alpha=8, dropout=0.0), dtype="float32")
    with torch.no_grad():
        for name, p in policy.model.named_parameters():
            if "lora_B" in name:
                p.add_(0.1)
    policy.model.save_pretrained(tmp_path / "adapter")
    again = load_policy(str(tmp_path / "adapter"), dtype="float32")
    assert again.has_lora and any(p.requires_grad for p in again.model.parameters())
    torch.testing.assert_close(_logits(policy), _logits(again))


def test_a_model_that_cannot_be_loaded_is_a_user_error_naming_it(tmp_path):
    from align.models import load_policy
    from align.user_errors import UserError

    with pytest.raises(UserError, match="model '\\./no-such-model': no such folder"):
        load_policy("./no-such-model")
    (tmp_path / "empty").mkdir()  # a folder, but no model in it
    with pytest.raises(UserError, match="could not be loaded: Unrecognized model"):
        load_policy(str(tmp_path / "empty"))
