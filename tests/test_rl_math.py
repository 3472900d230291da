"""Pure RL math against hand-computed numbers and autograd."""

import pytest
import torch

from align.rl.advantages import masked_gae
from align.rl.losses import ppo_clip_loss, symmetric_loss, value_loss
from align.rl.masked import masked_whiten
from align.rl.rewards import (
    AdaptiveKLController,
    kl_penalty,
    sentence_end_tokens,
    sentence_rewards,
    token_rewards,
)
from align.text import split_sentences


def test_sentence_rewards_land_on_sentence_ends():
    # tokens decode to: "Mr." " Lee" " ran." " It" " is" " 1.9" " m" (no final period)
    pieces = ["Mr.", " Lee", " ran.", " It", " is", " 1.9", " m"]
    text = "".join(pieces)
    ends = [sum(len(p) for p in pieces[: i + 1]) for i in range(len(pieces))]
    sentences = split_sentences(text)
    assert [s.text for s in sentences] == ["Mr. Lee ran.", "It is 1.9 m"]
    positions = sentence_end_tokens(ends, [s.end for s in sentences])
    assert positions == [2, 6]
    r = sentence_rewards([1.0, 0.2], positions, length=8)
    assert r.tolist() == pytest.approx([0, 0, 0.5, 0, 0, 0, -0.3, 0])
    with pytest.raises(ValueError, match="2 scores for 1 sentences"):
        sentence_rewards([1.0, 0.2], [2], 8)


@pytest.mark.parametrize("padding", ["right", "left"])
def test_rewards_and_gae_ignore_padding_side(padding):
    scores = torch.tensor([0.0, 0.5, 0.0, -0.3])
    values = torch.tensor([0.1, 0.2, 0.3, 0.4])
    pad = 2
    if padding == "right":
        r, v, m = (
            torch.cat([scores, torch.zeros(pad)]),
            torch.cat([values, torch.zeros(pad)]),
            torch.tensor([1, 1, 1, 1, 0, 0]),
        )
    else:
        r, v, m = (
            torch.cat([torch.zeros(pad), scores]),
            torch.cat([torch.zeros(pad), values]),
            torch.tensor([0, 0, 1, 1, 1, 1]),
        )
    adv, ret = masked_gae(r[None], v[None], m[None], gamma=1.0, lam=0.5)
    valid = adv[0][m.bool()]
    # hand computation, gamma 1, lam 0.5: deltas = r_t + V_{t+1} - V_t
    d = [0.0 + 0.2 - 0.1, 0.5 + 0.3 - 0.2, 0.0 + 0.4 - 0.3, -0.3 + 0.0 - 0.4]
    a3 = d[3]
    a2 = d[2] + 0.5 * a3
    a1 = d[1] + 0.5 * a2
    a0 = d[0] + 0.5 * a1
    assert valid.tolist() == pytest.approx([a0, a1, a2, a3])
    assert (adv[0][~m.bool()] == 0).all() and (ret[0][~m.bool()] == 0).all()


def test_kl_estimators_and_token_rewards():
    logp, ref = torch.tensor([[-1.0, -2.0]]), torch.tensor([[-1.5, -1.0]])
    assert kl_penalty(logp, ref, "k1")[0].tolist() == pytest.approx([0.5, -1.0])
    k3 = kl_penalty(logp, ref, "k3")
    assert k3[0, 0].item() == pytest.approx(torch.exp(torch.tensor(-0.5)).item() - 1 + 0.5)
    assert (k3 >= 0).all()
    rewards, _ = token_rewards(torch.tensor([[0.0, 0.5]]), logp, ref, torch.tensor([[1.0, 1.0]]), kl_coef=0.1)
    assert rewards[0].tolist() == pytest.approx([-0.05, 0.6])
    ctl = AdaptiveKLController(0.1, target=1.0, horizon=10)
    ctl.update(current_kl=2.0, n_steps=10)
    assert ctl.value == pytest.approx(0.12)


def test_whitening_is_masked():
    x = torch.tensor([[1.0, 2.0, 3.0, 100.0]])
    m = torch.tensor([[1, 1, 1, 0]])
    w = masked_whiten(x, m)
    assert w[0, :3].tolist() == pytest.approx([-1.0, 0.0, 1.0], abs=1e-4) and w[0, 3] == 0


def test_ppo_clip_hand_computed():
    old = torch.log(torch.tensor([[0.5, 0.5]]))
    new = torch.log(torch.tensor([[0.75, 0.25]]))  # ratios 1.5 and 0.5
    adv = torch.tensor([[1.0, 1.0]])
    loss, stats = ppo_clip_loss(new, old, adv, torch.ones(1, 2), clip=0.2)
    # min(1.5, 1.2) = 1.2 and min(0.5, 0.8) = 0.5 -> -(1.2 + 0.5)/2
    assert loss.item() == pytest.approx(-0.85)
    assert stats["clip_fraction"].item() == pytest.approx(0.5)


def test_symmetric_alpha1_beta0_is_ppo_exactly():
    torch.manual_seed(0)
    logp = torch.randn(3, 5).clamp(max=-0.01).requires_grad_()
    old, adv, mask = logp.detach() + 0.1 * torch.randn(3, 5), torch.randn(3, 5), torch.ones(3, 5)
    a, _ = ppo_clip_loss(logp, old, adv, mask)
    b, _ = symmetric_loss(logp, old, adv, mask, alpha=1.0, beta=0.0, z=-1.0)
    assert torch.equal(a, b)


def test_reverse_term_hand_computed_and_gradient_equals_ppo_where_gate_open():
    # one token: pi_old = 0.5, pi = 0.55 (ratio 1.1, inside the clip range), A = 2, Z = -1
    old = torch.log(torch.tensor([[0.5]]))
    logp = torch.log(torch.tensor([[0.55]])).requires_grad_()
    adv, mask = torch.tensor([[2.0]]), torch.ones(1, 1)
    total, stats = symmetric_loss(logp, old, adv, mask, alpha=0.0, beta=1.0, z=-1.0)
    # L_rev = -(Z A (1 - pi) / pi_old) = -(-1 * 2 * 0.45 / 0.5) = 1.8
    assert total.item() == pytest.approx(1.8) and stats["gate_open"].item() == 1.0
    (g_rev,) = torch.autograd.grad(total, logp)
    ppo, _ = ppo_clip_loss(logp, old, adv, mask)
    (g_ppo,) = torch.autograd.grad(ppo, logp)
    torch.testing.assert_close(g_rev, g_ppo)  # d/dlogp of -A(1-pi)/pi_old*Z equals d/dlogp of -rA
    # outside the clip range with A > 0 the gate closes and the reverse term has no gradient
    far = torch.log(torch.tensor([[0.9]])).requires_grad_()
    total, stats = symmetric_loss(far, old, adv, mask, alpha=0.0, beta=1.0, z=-1.0)
    (g,) = torch.autograd.grad(total, far)
    assert stats["gate_open"].item() == 0.0 and g.abs().sum() == 0


def test_value_loss_clipping():
    v, old, ret, m = torch.tensor([[2.0]]), torch.tensor([[0.0]]), torch.tensor([[3.0]]), torch.ones(1, 1)
    assert value_loss(v, old, ret, m)[0].item() == pytest.approx(0.5)
    # clipped value 0.5 -> error (0.5-3)^2 = 6.25 > 1 -> 0.5 * 6.25
    assert value_loss(v, old, ret, m, clip=0.5)[0].item() == pytest.approx(3.125)
