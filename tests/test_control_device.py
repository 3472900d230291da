"""Device choice and the bfloat16 Nature CNN: bf16 stays within bf16 precision of float32 and still learns."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from align.user_errors import UserError
from control import device
from control.config import TrainConfig
from control.device import resolve_device
from control.networks import ActorCritic
from control.train import train

IMAGE = gym.spaces.Box(0, 255, (4, 84, 84), np.uint8)


class ImageBandit(gym.Env):
    """Frames that are either dark or bright; action 1 on bright and 0 on dark earns 1. Eight choices an
    episode, so a random policy returns 4 and a solved one 8."""

    observation_space = IMAGE
    action_space = gym.spaces.Discrete(2)

    def _frame(self) -> np.ndarray:
        self.bright = bool(self.np_random.integers(2))
        base = 200 if self.bright else 40
        return (base + self.np_random.integers(-30, 30, IMAGE.shape)).astype(np.uint8)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self._frame(), {}

    def step(self, action):
        reward = float(int(action) == int(self.bright))
        self.t += 1
        return self._frame(), reward, self.t >= 8, False, {}


gym.register("ImageBandit-v0", entry_point=ImageBandit)


def test_auto_device_keeps_mlps_on_the_cpu():
    assert resolve_device("auto", image_obs=False) == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto", image_obs=True).type == expected
    assert resolve_device("cpu", image_obs=True) == torch.device("cpu")


def test_bad_device_names_the_setting():
    with pytest.raises(ValueError, match="not a torch device"):
        resolve_device("gpu0", image_obs=True)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA device"):
            resolve_device("cuda", image_obs=True)


def test_bf16_is_refused_for_mlp_policies():
    with pytest.raises(ValueError, match="image policies"):
        ActorCritic(gym.spaces.Box(-1, 1, (3,)), gym.spaces.Discrete(2), bf16=True)


def test_bf16_cnn_stays_within_bf16_precision_of_float32():
    torch.manual_seed(0)
    fp32 = ActorCritic(IMAGE, gym.spaces.Discrete(6))
    bf16 = ActorCritic(IMAGE, gym.spaces.Discrete(6), bf16=True)
    bf16.load_state_dict(fp32.state_dict())
    obs = torch.randint(0, 256, (16, *IMAGE.shape), dtype=torch.uint8)
    action = torch.randint(0, 6, (16,))
    grads = []
    for agent in (fp32, bf16):
        _, log_prob, _, entropy, value, _ = agent.distribution_terms(obs, action)
        assert log_prob.dtype == value.dtype == torch.float32
        agent.zero_grad()
        (log_prob.mean() + value.square().mean() + entropy.mean()).backward()
        grads.append(torch.cat([p.grad.flatten() for p in agent.parameters()]))
        if agent is fp32:
            ref_log_prob, ref_value = log_prob.detach(), value.detach()
    torch.testing.assert_close(log_prob.detach(), ref_log_prob, atol=0.02, rtol=0)
    torch.testing.assert_close(value.detach(), ref_value, atol=0.05, rtol=0.05)
    assert all(p.dtype == torch.float32 for p in bf16.parameters())
    cosine = torch.nn.functional.cosine_similarity(grads[0], grads[1], dim=0)
    assert cosine > 0.99, cosine


BANDIT = dict(
    env_id="ImageBandit-v0",
    bf16=True,
    device="cpu",
    num_envs=8,
    num_steps=64,
    update_epochs=4,
    minibatch_size=128,
    learning_rate=2.5e-4,
    ent_coef=0.01,
)


def test_bf16_is_refused_on_a_cpu_without_native_bf16(tmp_path, monkeypatch):
    """The re-measured AMD EPYC (AVX2 only) ran Pong 8.5x slower with --bf16: such CPUs are refused."""
    monkeypatch.setattr(device, "cpu_bf16_features", lambda: ("AMD EPYC 7B13", set()))
    with pytest.raises(
        UserError, match=r"--bf16 refused: the CPU \(AMD EPYC 7B13\) has neither AMX nor AVX512-BF16"
    ):
        train(TrainConfig(total_steps=512, eval_episodes=0, out_dir=str(tmp_path / "run"), **BANDIT))
    assert not (tmp_path / "run").exists()  # refused before the run folder is written


def test_bf16_is_refused_when_onednn_is_capped_below_bf16(monkeypatch):
    monkeypatch.setattr(device, "cpu_bf16_features", lambda: ("Xeon", {"avx512_bf16"}))
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    ok, why = device.native_bf16(torch.device("cpu"))
    assert not ok and "ONEDNN_MAX_CPU_ISA=AVX2" in why
    with pytest.raises(ValueError, match="--bf16 refused: ONEDNN_MAX_CPU_ISA=AVX2"):
        device.require_native_bf16(torch.device("cpu"))
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX512_CORE_AMX")
    assert device.native_bf16(torch.device("cpu"))[0]


def test_native_bf16_cpus_are_recognised(monkeypatch):
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    monkeypatch.delenv("DNNL_MAX_CPU_ISA", raising=False)
    for features in ({"amx_bf16"}, {"avx512_bf16"}, {"amx_bf16", "avx512_bf16"}):
        monkeypatch.setattr(device, "cpu_bf16_features", lambda f=features: ("Xeon", f))
        ok, why = device.native_bf16(torch.device("cpu"))
        assert ok and all(f in why for f in features)
        device.require_native_bf16(torch.device("cpu"))  # no error


def test_cpu_flags_are_read_from_cpuinfo():
    text = (
        "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B13\n"
        "flags\t\t: fpu sse2 avx avx2 fma\n\nprocessor\t: 1\nmodel name\t: AMD EPYC 7B13\n"
    )
    assert device.cpu_flags_from_cpuinfo(text) == ("AMD EPYC 7B13", {"fpu", "sse2", "avx", "avx2", "fma"})
    model, flags = device.cpu_flags_from_cpuinfo("model name : Xeon\nflags : avx512f avx512_bf16 amx_bf16")
    assert flags & set(device.NATIVE_BF16_CPU_FLAGS) == {"avx512_bf16", "amx_bf16"}


@pytest.mark.skipif(
    not device.native_bf16(torch.device("cpu"))[0], reason="this CPU has no native bf16: --bf16 is refused"
)
def test_bf16_cnn_policy_learns_an_image_bandit(tmp_path):
    summary = train(TrainConfig(total_steps=6144, eval_episodes=10, out_dir=str(tmp_path), **BANDIT))
    assert summary["eval_mean_return"] >= 7.5, summary  # random: 4
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert all(v.dtype == torch.float32 for v in state["agent"].values() if v.is_floating_point())
