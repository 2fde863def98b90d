"""Checkers for chapter 05's exercises (GAN discriminator loss, WGAN-GP gradient penalty, DDPM q_sample)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..checks import CheckFailed, expect_close, expect_shape, expect_type, run_checks


def check_discriminator_loss(fn):
    """``fn(real_logits, fake_logits) -> scalar``: BCE with "real → 1" and "fake → 0", each averaged over its batch."""
    def against_bce(fn):
        generator = torch.Generator().manual_seed(0)
        real, fake = torch.randn(16, generator=generator) * 3, torch.randn(16, generator=generator) * 3 - 1
        got = fn(real.clone(), fake.clone())
        expect_type(got, torch.Tensor, "the loss")
        expect_shape(got, (), "the loss (a scalar)")
        expected = (F.binary_cross_entropy_with_logits(real, torch.ones_like(real))
                    + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake)))
        if abs(float(got) - float(expected)) > 1e-4:
            swapped = F.binary_cross_entropy_with_logits(real, torch.zeros_like(real)) \
                + F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake))
            only_real = F.binary_cross_entropy_with_logits(real, torch.ones_like(real))
            on_probabilities = F.binary_cross_entropy(real.clamp(0, 1), torch.ones_like(real)) \
                + F.binary_cross_entropy(fake.clamp(0, 1), torch.zeros_like(fake))
            hint = ""
            if abs(float(got) - float(swapped)) < 1e-4:
                hint = " — the targets are swapped: real logits should go to 1, fake ones to 0"
            elif abs(float(got) - float(only_real)) < 1e-4:
                hint = " — the fake batch's term is missing"
            elif abs(float(got) - float(expected) / 2) < 1e-4:
                hint = " — sum the two terms, do not average them"
            elif abs(float(got) - float(on_probabilities)) < 1e-3:
                hint = " — the inputs are logits: use binary_cross_entropy_with_logits (or apply a sigmoid first)"
            raise CheckFailed(f"your loss is {float(got):.4f}, expected {float(expected):.4f}{hint}")
        equilibrium = fn(torch.zeros(4), torch.zeros(4))
        expect_close(float(equilibrium), 2 * math.log(2), "the loss when D says 1/2 to everything")

    return run_checks("discriminator_loss", fn, [("random logits vs BCE with logits", against_bce)])


class _LinearCritic(nn.Module):
    def __init__(self, weight):
        super().__init__()
        self.weight = nn.Parameter(torch.tensor(weight))

    def forward(self, x):
        return x.flatten(1) @ self.weight


def check_gradient_penalty(fn):
    """``fn(critic, real, fake) -> scalar``: mean over samples of (‖∇ₓ critic(x̂)‖₂ − 1)² at points x̂ between real and fake."""
    def linear_critics(fn):
        for weight, expected in (([0.6, 0.8], 0.0), ([1.2, 1.6], 1.0), ([0.0, 3.0], 4.0)):
            critic = _LinearCritic(weight)
            got = fn(critic, torch.randn(8, 2), torch.randn(8, 2))
            expect_type(got, torch.Tensor, "the penalty")
            expect_shape(got, (), "the penalty (a scalar)")
            if abs(float(got.detach()) - expected) > 1e-4:
                norm = math.hypot(*weight)
                hint = " — square the distance from 1" if abs(float(got.detach()) - abs(norm - 1)) < 1e-4 else ""
                if abs(float(got.detach()) - (norm ** 2 - 1) ** 2) < 1e-4:
                    hint = " — use the gradient's norm, not its squared norm"
                raise CheckFailed(f"a linear critic with slope {norm:g} has penalty (|{norm:g}| − 1)² = {expected:g}; "
                                  f"yours gives {float(got.detach()):.4f}{hint}")

    def per_sample_norms(fn):
        critic = lambda x: 0.5 * x.flatten(1).square().sum(dim=1)  # gradient = x itself
        points = torch.tensor([[0.3, 0.4], [3.0, 0.0]])  # norms 0.5 and 3; real = fake, so x̂ = the points
        got = fn(critic, points, points.clone())
        expected = ((0.5 - 1) ** 2 + (3 - 1) ** 2) / 2
        if abs(float(got.detach()) - expected) > 1e-4:
            raise CheckFailed(f"for gradients of norm 0.5 and 3 the penalty is {expected}, yours gives {float(got.detach()):.4f}"
                              " — take the norm of each sample's gradient, then average the squared distances")

    def differentiable(fn):
        critic = _LinearCritic([1.2, 1.6])
        penalty = fn(critic, torch.randn(4, 2), torch.randn(4, 2))
        if not penalty.requires_grad:
            raise CheckFailed("the penalty has no gradient w.r.t. the critic's weights: "
                              "call torch.autograd.grad(..., create_graph=True)")
        penalty.backward()
        expected = 2 * (2.0 - 1) * torch.tensor([1.2, 1.6]) / 2.0
        expect_close(critic.weight.grad, expected, "the penalty's gradient w.r.t. the critic's weights")

    return run_checks("gradient_penalty", fn, [("linear critics", linear_critics), ("a norm per sample", per_sample_norms),
                                               ("backpropagates into the critic", differentiable)])


def check_q_sample(fn):
    """``fn(x0, t, noise, alpha_bars) -> x_t``: √ᾱ_t·x0 + √(1−ᾱ_t)·noise, one timestep per image."""
    def against_diffusers(fn):
        from diffusers import DDPMScheduler

        scheduler = DDPMScheduler(num_train_timesteps=1000)
        generator = torch.Generator().manual_seed(0)
        x0 = torch.rand(6, 1, 8, 8, generator=generator) * 2 - 1
        noise = torch.randn(6, 1, 8, 8, generator=generator)
        t = torch.tensor([0, 10, 250, 500, 750, 999])
        got = fn(x0.clone(), t.clone(), noise.clone(), scheduler.alphas_cumprod.clone())
        expect_type(got, torch.Tensor, "x_t")
        expect_shape(got, tuple(x0.shape), "x_t")
        expected = scheduler.add_noise(x0, noise, t)
        if not torch.allclose(got, expected, atol=1e-5):
            bars = scheduler.alphas_cumprod[t].view(-1, 1, 1, 1)
            if torch.allclose(got, bars * x0 + (1 - bars) * noise, atol=1e-5):
                raise CheckFailed("x_t uses ᾱ and 1 − ᾱ as weights: they are variances, take square roots")
            if torch.allclose(got[:1], expected[:1], atol=1e-5) and not torch.allclose(got[-1], expected[-1], atol=1e-5):
                raise CheckFailed("only the first image is right: index alpha_bars with each image's own t")
            raise CheckFailed(f"x_t differs from DDPMScheduler.add_noise by up to {(got - expected).abs().max():.4f}")

    return run_checks("q_sample", fn, [("six timesteps vs DDPMScheduler.add_noise", against_diffusers)])
