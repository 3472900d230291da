"""Activation checkpointing of the PPO forward (`align.trainers.checkpointing`): the same log-probs, values,
logits and gradients as keeping every activation, on the shared-prompt path (its KV cache kept) and the full
pass, full and LoRA; the forward really holds less for the backward (counted as the bytes of the tensors still
alive after it, not by a clock); a PPO iteration (scoring, reused forward, update) gives the same weights,
metrics and first ratio exactly 1 in every mode."""

import weakref
from collections import defaultdict

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

import align.trainers.scoring as scoring
from align.data import load_sample_scienceqa
from align.generate import SamplingConfig
from align.models import LoraSettings, load_policy
from align.rl.losses import POLICY_LOSSES
from align.trainers.checkpointing import checkpointable_layers, checkpointed_layers
from align.trainers.ppo import PPOTrainer
from align.trainers.ppo_config import PPOConfig
from align.trainers.reward_fns import SequenceReward
from align.trainers.rollout import sample_chunk
from align.trainers.scoring import PolicyWithValue, ValueHead, forward_tokens

SAMPLES = load_sample_scienceqa("train")
TEXT_ONLY = [p for p in SAMPLES if not p.image][:3]
MODES = ("selective", "full")


class AliveOutputs(TorchDispatchMode):
    """Records a weak reference to every tensor an op creates; `held_bytes` is the size of the storages that
    are still referenced afterwards (what a forward keeps for its backward, outputs included)."""

    def __init__(self) -> None:
        super().__init__()
        self.refs: list[weakref.ref] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor):
                self.refs.append(weakref.ref(t))
        return out

    def held_bytes(self) -> int:
        storages = {}
        for ref in self.refs:
            t = ref()
            if t is not None:
                storage = t.untyped_storage()
                storages[storage.data_ptr()] = storage.nbytes()
        return sum(storages.values())


def _module(family, lora, tiny_family_path):
    policy = load_policy(
        str(tiny_family_path(family)),
        lora=LoraSettings(r=4, alpha=8, dropout=0.0) if lora else None,
        dtype="float32",
    )
    torch.manual_seed(0)
    if lora:  # LoRA's B starts at zero; make the adapter matter
        with torch.no_grad():
            for name, param in policy.model.named_parameters():
                if "lora_B" in name:
                    param.copy_(torch.randn(param.shape) * 0.1)
    head = ValueHead(policy.model.config.get_text_config().hidden_size)
    torch.nn.init.normal_(head.net[-1].weight, std=0.5)
    return policy, PolicyWithValue(policy.model, head)


def _loss_and_grads(module, chunk, mode):
    module.zero_grad(set_to_none=True)
    logp, values, logits = forward_tokens(
        module, chunk, with_values=True, with_logits=True, checkpointing=mode
    )
    mask = chunk.response_mask.float()
    loss = ((logp * 0.7 + values**2) * mask).sum() + torch.logsumexp(logits, -1).mean()
    loss.backward()
    grads = {n: p.grad.clone() for n, p in module.named_parameters() if p.grad is not None}
    return (logp.detach(), values.detach(), logits.detach(), loss.detach()), grads


@pytest.mark.parametrize("lora", [False, True], ids=["full", "lora"])
@pytest.mark.parametrize("family", ["llama", "gpt2", "llava"])
def test_checkpointed_forward_gives_the_same_outputs_and_gradients(
    family, lora, tiny_family_path, monkeypatch
):
    policy, module = _module(family, lora, tiny_family_path)
    shared = []
    original = scoring._shared_prompt_pass
    monkeypatch.setattr(scoring, "_shared_prompt_pass", lambda *a: shared.append(1) or original(*a))
    chunk = sample_chunk(policy, TEXT_ONLY, 2, {"max_new_tokens": 6, "do_sample": True})
    expected_out, expected_grads = _loss_and_grads(module, chunk, "none")
    assert expected_grads and all(g.abs().sum() > 0 for g in expected_grads.values())
    for mode in MODES:
        out, grads = _loss_and_grads(module, chunk, mode)
        for a, b in zip(out, expected_out, strict=True):
            assert torch.equal(a, b), mode
        assert grads.keys() == expected_grads.keys()
        differ = [n for n in grads if not torch.equal(grads[n], expected_grads[n])]
        assert not differ, f"{mode}: gradients differ: {differ[:3]}"
    # the text models took the shared-prompt path (KV cache kept under checkpointing), LLaVA one full pass
    assert bool(shared) == (family != "llava")
    assert checkpointable_layers(module)
    assert "forward" not in vars(checkpointable_layers(module)[0])  # the layers are restored


def _held_by_forward(module, chunk, mode):
    with AliveOutputs() as alive:
        outputs = forward_tokens(module, chunk, with_values=True, with_logits=True, checkpointing=mode)
    held = alive.held_bytes()
    sum(o.sum() for o in outputs).backward()  # the recomputation works after the forward's context closed
    return held


@pytest.mark.parametrize("lora", [False, True], ids=["full", "lora"])
def test_checkpointed_forward_holds_less_for_the_backward(lora, tiny_family_path):
    policy, module = _module("llama", lora, tiny_family_path)
    chunk = sample_chunk(policy, SAMPLES[:4], 4, {"max_new_tokens": 24, "do_sample": True})
    held = {mode: _held_by_forward(module, chunk, mode) for mode in ("none", *MODES)}
    # weights are not created by the forward, so these are activations and outputs (of which the tiny
    # model's 1,024-wide logits, outside the layers, are a large part; with LoRA "selective" also keeps
    # each adapter's product, so it saves less: 0.92 of "none" here, 0.60 without LoRA)
    assert held["selective"] < (0.96 if lora else 0.7) * held["none"], held
    assert held["full"] < 0.5 * held["none"], held
    with torch.no_grad(), checkpointed_layers(module, "full"):  # no gradients: nothing to checkpoint
        assert "forward" not in vars(checkpointable_layers(module)[0])
    # under autocast "selective" cannot replay the forward op by op (cached weight casts): it runs as "full"
    with torch.autocast("cpu", dtype=torch.bfloat16), checkpointed_layers(module, "selective"):
        assert vars(checkpointable_layers(module)[0])["forward"].args[1] == "full"
    with checkpointed_layers(module, "selective"):
        assert vars(checkpointable_layers(module)[0])["forward"].args[1] == "selective"


def _trainer(path, tmp_path, mode, reuse):
    config = PPOConfig(
        output_dir=str(tmp_path),
        prompts_per_iteration=4,
        sampling=SamplingConfig(num_samples=2, max_new_tokens=8),
        ppo_epochs=2,
        minibatch_size=3,
        gradient_accumulation_steps=2,
        learning_rate=1e-3,
        save_every=0,
        reuse_scoring_forward=reuse,
        activation_checkpointing=mode,
    )
    torch.manual_seed(0)  # the adapter's initial weights
    policy = load_policy(str(path), lora=LoraSettings(r=4, alpha=8, dropout=0.0), dtype="float32")
    return PPOTrainer(policy, SequenceReward(lambda p, t: float(len(t) % 5)), config, SAMPLES)


def test_ppo_iteration_is_the_same_in_every_checkpointing_mode(tiny_lm_path, tmp_path, monkeypatch):
    runs = [("none", False), ("none", True), ("selective", True), ("full", True), ("full", False)]
    trainers = {run: _trainer(tiny_lm_path, tmp_path / "-".join(map(str, run)), *run) for run in runs}
    metrics, log_ratios = {}, defaultdict(list)
    loss_fn = POLICY_LOSSES["ppo"]

    def recorded(logp, old_logp, advantages, mask, params):
        log_ratios[run].append((logp.detach() - old_logp)[mask.bool()])
        return loss_fn(logp, old_logp, advantages, mask, params)

    monkeypatch.setitem(POLICY_LOSSES, "ppo", recorded)
    for run, trainer in trainers.items():
        torch.manual_seed(0)
        stats = defaultdict(list)
        trainer.update(trainer.rollout(trainer.local_problems(0), stats), stats)
        metrics[run] = {k: v for k, v in stats.items() if not k.startswith("time/")}
    base = dict(trainers[runs[0]].model.named_parameters())
    assert any(
        not torch.equal(p, p0)
        for p, p0 in zip(base.values(), _trainer_start(tiny_lm_path, tmp_path), strict=True)
    )
    for run in runs[1:]:
        params = dict(trainers[run].model.named_parameters())
        moved = [n for n in base if not torch.equal(base[n], params[n])]
        assert not moved, f"{run}: weights differ: {moved[:3]}"
        assert metrics[run] == metrics[runs[0]], run
    for run in runs:
        assert metrics[run]["approx_kl"][0] == 0.0  # the first ratio is exactly 1
        assert all(torch.equal(r, torch.zeros_like(r)) for r in log_ratios[run][:2])


def _trainer_start(path, tmp_path):
    """The weights before any update (the check above can fail: the update moved them)."""
    trainer = _trainer(path, tmp_path / "start", "none", False)
    return [p.detach().clone() for p in trainer.model.parameters()]
