"""DLPO and baselines: hand-computed values and the reductions the paper states."""

import pytest
import torch

from align.diffusion.objectives import (
    OBJECTIVES,
    ObjectiveInputs,
    ObjectiveSettings,
    kl_in_reward_shaping,
    normalise_rewards,
)


def _inputs(**kw):
    logp = torch.tensor([[-1.0, -2.0], [-0.5, -1.5]], requires_grad=True)
    base = dict(logp=logp, old_logp=logp.detach().clone(), advantages=torch.tensor([1.0, -2.0]))
    base.update(kw)
    return ObjectiveInputs(**base)


def test_dlpo_by_hand():
    diff = torch.tensor(0.3, requires_grad=True)
    loss, stats = OBJECTIVES["dlpo"].loss(_inputs(diffusion_loss=diff), ObjectiveSettings(alpha=5, beta=1))
    # pg = -mean([1 * (-3), -2 * (-2)]) = -mean([-3, 4]) = -0.5
    assert stats["pg_loss"].item() == pytest.approx(-0.5)
    assert loss.item() == pytest.approx(5 * -0.5 + 0.3)


def test_dlpo_alpha_zero_is_plain_diffusion_training():
    inp = _inputs(diffusion_loss=torch.tensor(0.7, requires_grad=True))
    loss, _ = OBJECTIVES["dlpo"].loss(inp, ObjectiveSettings(alpha=0.0, beta=1.0))
    loss.backward()
    assert loss.item() == pytest.approx(0.7)
    assert torch.count_nonzero(inp.logp.grad) == 0
    assert inp.diffusion_loss.grad.item() == pytest.approx(1.0)


def test_dlpo_beta_zero_is_the_reinforce_estimator():
    inp = _inputs(diffusion_loss=torch.tensor(0.7, requires_grad=True))
    loss, _ = OBJECTIVES["dlpo"].loss(inp, ObjectiveSettings(alpha=2.0, beta=0.0))
    loss.backward()
    # d/dlogp_bk of -alpha * mean_b(A_b sum_k logp_bk) = -alpha * A_b / B
    expected = -2.0 * torch.tensor([[1.0, 1.0], [-2.0, -2.0]]) / 2
    torch.testing.assert_close(inp.logp.grad, expected)
    assert inp.diffusion_loss.grad is None
    ref, _ = OBJECTIVES["reinforce"].loss(_inputs(), ObjectiveSettings(alpha=2.0))
    assert loss.item() == pytest.approx(ref.item())


def test_ddpo_clips_the_ratio():
    inp = _inputs(old_logp=torch.tensor([[-1.5, -2.0], [-0.5, -1.0]]))
    loss, stats = OBJECTIVES["ddpo"].loss(inp, ObjectiveSettings(alpha=1.0, clip_range=0.2))
    loss.backward()
    r = torch.exp(torch.tensor([[0.5, 0.0], [0.0, -0.5]]))
    a = torch.tensor([[1.0], [-2.0]])
    surrogate = torch.minimum(r * a, r.clamp(0.8, 1.2) * a)
    assert loss.item() == pytest.approx(-surrogate.sum(1).mean().item(), rel=1e-6)
    # (0,0): ratio e^0.5 > 1.2 with A > 0: clipped, no gradient; (1,1): ratio e^-0.5 < 0.8 with A < 0: clipped
    assert inp.logp.grad[0, 0] == 0 and inp.logp.grad[1, 1] == 0
    assert inp.logp.grad[0, 1].item() == pytest.approx(-0.5)  # -A r / B = -1 * 1 / 2
    assert stats["clip_fraction"].item() == pytest.approx(0.5)


def test_rwr_weights_are_normalised_exponentiated_advantages():
    inp = _inputs()
    loss, _ = OBJECTIVES["rwr"].loss(inp, ObjectiveSettings(alpha=1.0, rwr_temperature=1.0))
    w = torch.softmax(torch.tensor([1.0, -2.0]), 0) * 2
    assert loss.item() == pytest.approx(-(w * torch.tensor([-3.0, -2.0])).mean().item(), rel=1e-6)


def test_dpok_adds_the_kl_penalty_with_gradient():
    kl = torch.tensor([[0.1, 0.2], [0.3, 0.0]], requires_grad=True)
    loss, stats = OBJECTIVES["dpok"].loss(_inputs(kl=kl), ObjectiveSettings(alpha=1.0, beta=2.0))
    loss.backward()
    assert stats["kl_penalty"].item() == pytest.approx(0.3)
    assert loss.item() == pytest.approx(-0.5 + 2 * 0.3)
    torch.testing.assert_close(kl.grad, torch.full((2, 2), 1.0))
    with pytest.raises(ValueError, match="kl"):
        OBJECTIVES["dpok"].loss(_inputs(), ObjectiveSettings())


def test_kl_in_reward_subtracts_kl_from_the_reward():
    out = kl_in_reward_shaping(torch.tensor([3.0, 2.0]), torch.tensor([0.5, 1.0]), beta=2.0)
    torch.testing.assert_close(out, torch.tensor([2.0, 0.0]))
    assert OBJECTIVES["kl_in_reward"].shapes_reward_with_kl


def test_reward_normalisation():
    r = torch.tensor([1.0, 2.0, 3.0])
    torch.testing.assert_close(normalise_rewards(r, "center"), torch.tensor([-1.0, 0.0, 1.0]))
    torch.testing.assert_close(
        normalise_rewards(r, "whiten"), torch.tensor([-1.0, 0.0, 1.0]), atol=1e-6, rtol=0
    )
    with pytest.raises(ValueError, match="normalisation"):
        normalise_rewards(r, "rank")


def test_every_objective_has_one_signature():
    for name, obj in OBJECTIVES.items():
        inp = _inputs(diffusion_loss=torch.tensor(0.1), kl=torch.zeros(2, 2))
        loss, stats = obj.loss(inp, ObjectiveSettings())
        assert loss.ndim == 0 and "pg_loss" in stats, name
