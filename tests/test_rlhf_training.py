"""The supervised TL;DR stages on their TRL trainers, on our sample data and a tiny GPT-2: SFT lowers the
held-out loss, the reward model ranks held-out chosen summaries above rejected ones better than chance, and
an interrupted stage resumes from its checkpoint."""

import pytest
from transformers import TrainerCallback

from align.data.samples import sample_root
from align.rlhf.tiny import TinyTextConfig, build_tiny_gpt2
from align.rlhf.tldr_data import load_preferences, load_summaries
from align.rlhf.training import TrainSettings, last_checkpoint, train_reward_model, train_sft

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TLDR = sample_root() / "tldr"
SMALL = TinyTextConfig(max_positions=256)


@pytest.fixture(scope="module")
def tldr_sft(tmp_path_factory):
    """A tiny GPT-2 fine-tuned on 120 sample post/summary pairs (TRL SFTTrainer)."""
    root = tmp_path_factory.mktemp("tldr")
    train = load_summaries(TLDR / "sft", "train")[:120]
    held_out = load_summaries(TLDR / "sft", "validation")[:20]
    base = build_tiny_gpt2(
        root / "base", [p.prompt + p.completion for p in load_summaries(TLDR / "sft", "train")], config=SMALL
    )
    settings = TrainSettings(epochs=3, learning_rate=3e-3, batch_size=8, max_length=256)
    return train_sft(str(base), train, held_out, settings, root / "sft")


def test_sft_lowers_the_held_out_loss(tldr_sft):
    assert tldr_sft["eval_loss_after"] < 0.7 * tldr_sft["eval_loss_before"]


def test_reward_model_ranks_held_out_pairs_above_chance(tldr_sft, tmp_path):
    train = load_preferences(TLDR / "preference", "train")[:240]
    held_out = load_preferences(TLDR / "preference", "validation")
    settings = TrainSettings(epochs=2, learning_rate=1e-3, batch_size=8, max_length=256)
    result = train_reward_model(tldr_sft["model"], train, held_out, settings, tmp_path / "rm")
    assert result["pairs"] == len(held_out) >= 50
    assert result["accuracy"] >= 0.7 and result["accuracy"] > result["accuracy_before"] + 0.15


class Interrupt(TrainerCallback):
    """Stops the process (as a kill would) once step `at` is saved."""

    def __init__(self, at: int):
        self.at = at

    def on_save(self, args, state, control, **kwargs):
        if state.global_step >= self.at:
            raise KeyboardInterrupt


def test_an_interrupted_stage_resumes_from_its_checkpoint(tmp_path):
    train = load_summaries(TLDR / "sft", "train")[:48]
    held_out = load_summaries(TLDR / "sft", "validation")[:8]
    base = build_tiny_gpt2(tmp_path / "base", [p.prompt + p.completion for p in train], config=SMALL)
    settings = TrainSettings(epochs=2, learning_rate=3e-3, batch_size=16, max_length=256, save_steps=2)
    with pytest.raises(KeyboardInterrupt):
        train_sft(str(base), train, held_out, settings, tmp_path / "sft", callbacks=[Interrupt(2)])
    assert last_checkpoint(tmp_path / "sft").endswith("checkpoint-2")
    result = train_sft(str(base), train, held_out, settings, tmp_path / "sft")
    assert result["resumed_from"].endswith("checkpoint-2")
    assert result["eval_loss_after"] < result["eval_loss_before"]
    assert (tmp_path / "sft" / "model" / "config.json").is_file() and last_checkpoint(
        tmp_path / "sft"
    ) is None
