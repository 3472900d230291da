"""Step Gaussians under diffusers schedulers, checked against the scheduler's own sampling and torch.distributions."""

import math

import pytest
import torch
from diffusers import DDIMScheduler, DDPMScheduler

from align.diffusion.steps import gaussian_kl, noise_prediction_loss, step_distribution, step_log_prob


@pytest.mark.parametrize("steps", [1000, 50])
@pytest.mark.parametrize("variance_type", ["fixed_small", "fixed_large"])
@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction"])
def test_ddpm_step_gaussian_is_the_one_the_scheduler_samples_from(steps, variance_type, prediction_type):
    sched = DDPMScheduler(
        num_train_timesteps=1000, variance_type=variance_type, prediction_type=prediction_type
    )
    sched.set_timesteps(steps)
    torch.manual_seed(0)
    x_t = torch.randn(3, 1, 40)
    out = torch.randn(3, 1, 40) * 0.5
    for t in (
        int(sched.timesteps[0]),
        int(sched.timesteps[len(sched.timesteps) // 2]),
        int(sched.timesteps[-2]),
    ):
        g = step_distribution(sched, out, t, x_t)
        prev = sched.step(out, t, x_t, generator=torch.Generator().manual_seed(5)).prev_sample
        noise = torch.randn(x_t.shape, generator=torch.Generator().manual_seed(5))
        torch.testing.assert_close(prev, g.mean + g.std * noise, atol=2e-4, rtol=1e-4)  # float32 rounding
        direct = (
            torch.distributions.Normal(g.mean.double(), g.std.double()).log_prob(prev.double()).sum((1, 2))
        )
        torch.testing.assert_close(
            step_log_prob(g.mean, g.std, prev, "sum").double(), direct, atol=1e-3, rtol=1e-5
        )
        torch.testing.assert_close(
            step_log_prob(g.mean, g.std, prev, "mean").double(), direct / 40, atol=1e-4, rtol=1e-5
        )


def test_ddpm_last_step_is_deterministic_and_has_no_density():
    sched = DDPMScheduler()
    g = step_distribution(sched, torch.zeros(1, 4), 0, torch.ones(1, 4))
    assert float(g.std) == 0
    with pytest.raises(ValueError, match="deterministic"):
        step_log_prob(g.mean, g.std, g.mean)


def test_ddim_step_gaussian_matches_scheduler_with_eta():
    sched = DDIMScheduler(num_train_timesteps=1000)
    sched.set_timesteps(20)
    torch.manual_seed(1)
    x_t, out = torch.randn(2, 8), torch.randn(2, 8)
    t = int(sched.timesteps[5])
    g = step_distribution(sched, out, t, x_t, eta=1.0)
    prev = sched.step(out, t, x_t, eta=1.0, generator=torch.Generator().manual_seed(3)).prev_sample
    noise = torch.randn(x_t.shape, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(prev, g.mean + g.std * noise, atol=2e-4, rtol=1e-4)  # float32 rounding
    with pytest.raises(ValueError, match="eta"):
        step_distribution(sched, out, t, x_t, eta=0.0)


def test_log_prob_by_hand_and_kl_by_hand():
    mean, x = torch.tensor([[0.0, 1.0]]), torch.tensor([[0.5, 0.0]])
    std = torch.tensor(0.5)
    # per element: -(d^2)/(2*0.25) - log 0.5 - 0.5 log(2 pi); d^2 = 0.25 and 1.0
    expected = -(0.25 + 1.0) / 0.5 - 2 * math.log(0.5) - math.log(2 * math.pi)
    assert step_log_prob(mean, std, x, "sum").item() == pytest.approx(expected, rel=1e-6)
    assert gaussian_kl(mean, x, std, "sum").item() == pytest.approx((0.25 + 1.0) / 0.5, rel=1e-6)
    assert noise_prediction_loss(mean, x).item() == pytest.approx(0.625)
    assert noise_prediction_loss(mean, x, "l1").item() == pytest.approx(0.75)


def test_unsupported_scheduler_settings_are_named():
    from diffusers import EulerDiscreteScheduler

    with pytest.raises(TypeError, match="EulerDiscreteScheduler"):
        step_distribution(EulerDiscreteScheduler(), torch.zeros(1, 2), 10, torch.zeros(1, 2))
    with pytest.raises(ValueError, match="variance_type"):
        step_distribution(DDPMScheduler(variance_type="learned"), torch.zeros(1, 2), 10, torch.zeros(1, 2))
