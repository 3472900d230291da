"""Pure RL math against hand-computed numbers and autograd."""

import math

import pytest
import torch

from align.rl.advantages import masked_gae, whiten_across
from align.rl.losses import POLICY_LOSSES, PolicyLossParams, ppo_clip_loss, symmetric_loss, value_loss
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
    # both ratios left [0.8, 1.2]; approx_kl = mean((r - 1) - log r)
    assert stats["clip_fraction"].item() == pytest.approx(1.0)
    expected_kl = ((0.5 - math.log(1.5)) + (-0.5 - math.log(0.5))) / 2
    assert stats["approx_kl"].item() == pytest.approx(expected_kl)


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


def test_whiten_across_chunks_equals_whitening_the_concatenated_batch():
    torch.manual_seed(1)
    a, b = torch.randn(2, 5), torch.randn(3, 7)
    ma, mb = (torch.rand(2, 5) > 0.3).float(), (torch.rand(3, 7) > 0.3).float()
    wa, wb = whiten_across([a, b], [ma, mb])
    flat = torch.cat([a[ma.bool()], b[mb.bool()]])
    mean, std = flat.mean(), flat.std()
    torch.testing.assert_close(wa, (a - mean) / (std + 1e-8) * ma)
    torch.testing.assert_close(wb, (b - mean) / (std + 1e-8) * mb)
    assert torch.cat([wa[ma.bool()], wb[mb.bool()]]).std().item() == pytest.approx(1.0, abs=1e-5)


def test_policy_loss_registry_dispatches_by_name_with_one_signature():
    torch.manual_seed(2)
    logp = torch.randn(2, 4).clamp(max=-0.05)
    old, adv, mask = logp + 0.1 * torch.randn(2, 4), torch.randn(2, 4), torch.ones(2, 4)
    params = PolicyLossParams(clip=0.2, alpha=0.5, beta=0.4, z=-1.0)
    ppo, _ = POLICY_LOSSES["ppo"](logp, old, adv, mask, params)
    sppo, stats = POLICY_LOSSES["sppo"](logp, old, adv, mask, params)
    assert torch.equal(ppo, ppo_clip_loss(logp, old, adv, mask, 0.2)[0])
    assert torch.equal(sppo, symmetric_loss(logp, old, adv, mask, 0.2, 0.5, 0.4, -1.0)[0])
    assert "reverse_loss" in stats and set(POLICY_LOSSES) >= {"ppo", "sppo"}


def test_align_and_control_sppo_agree_in_loss_gradient_and_statistics():
    """The token-level (masked) SPPO of align and the per-sample SPPO of control are one formula: on the
    same flat samples with a full mask they give the same loss, gradient and same-named statistics."""
    from control.losses.policy import sppo_loss

    torch.manual_seed(3)
    n = 64
    old = torch.log(torch.rand(n) * 0.9 + 0.05)
    logp = (old + 0.3 * torch.randn(n)).clamp(max=-1e-3)  # some ratios far outside the clip range
    adv = torch.randn(n)
    for z in (-1.0, -6.0):
        a = logp.clone().requires_grad_()
        c = logp.clone().requires_grad_()
        la, sa = symmetric_loss(
            a.view(1, n), old.view(1, n), adv.view(1, n), torch.ones(1, n), 0.2, 0.5, 0.4, z
        )
        lc, sc = sppo_loss(c, old, adv, c.exp(), 0.2, 0.5, 0.4, z)
        torch.testing.assert_close(la, lc)
        (ga,) = torch.autograd.grad(la, a)
        (gc,) = torch.autograd.grad(lc, c)
        torch.testing.assert_close(ga, gc)
        for key in ("clip_fraction", "approx_kl", "reverse_loss", "gate_open"):
            torch.testing.assert_close(sa[key].float(), sc[key].float(), msg=key)
