"""Checkers for chapter 05's exercises (GAN discriminator loss, WGAN-GP gradient penalty, DDPM q_sample).

The losses must keep their autograd graph (their gradients are compared with the reference's); the
gradient penalty is checked at the points where the student evaluated the critic, with critics whose
gradient changes from place to place, so skipping the interpolation or one ratio for the batch shows.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..checks import (
    CheckFailed,
    as_double,
    call,
    close,
    expect_close,
    expect_float_tensor,
    expect_shape,
    expect_type,
    run_checks,
)


def _bce_loss(real, fake):
    return (F.binary_cross_entropy_with_logits(real, torch.ones_like(real))
            + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake)))


def check_discriminator_loss(fn):
    """``fn(real_logits, fake_logits) -> scalar``: BCE with "real → 1" and "fake → 0", each averaged over its batch."""
    def against_bce(fn):
        generator = torch.Generator().manual_seed(0)
        real, fake = torch.randn(16, generator=generator) * 3, torch.randn(16, generator=generator) * 3 - 1
        got = call(fn, real, fake)
        expect_type(got, torch.Tensor, "the loss")
        expect_shape(got, (), "the loss (a scalar)")
        expected = _bce_loss(real, fake)
        if not abs(float(got) - float(expected)) <= 1e-4:  # NaN fails too
            candidates = [
                (_bce_loss(fake, real), " — the targets are swapped: real logits should go to 1, fake ones to 0"),
                (F.binary_cross_entropy_with_logits(real, torch.ones_like(real)), " — the fake batch's term is missing"),
                (expected / 2, " — sum the two terms, do not average them"),
                (F.binary_cross_entropy(real.clamp(0, 1), torch.ones_like(real))
                 + F.binary_cross_entropy(fake.clamp(0, 1), torch.zeros_like(fake)),
                 " — the inputs are logits: use binary_cross_entropy_with_logits (or apply a sigmoid first)")]
            hint = next((h for value, h in candidates if abs(float(got) - float(value)) < 1e-4), "")
            raise CheckFailed(f"your loss is {float(got):.4f}, expected {float(expected):.4f}{hint}")
        equilibrium = call(fn, torch.zeros(4), torch.zeros(4))
        expect_close(float(equilibrium), 2 * math.log(2), "the loss when D says 1/2 to everything")

    def unequal_batches(fn):
        generator = torch.Generator().manual_seed(1)
        for n_real, n_fake, dtype in ((12, 4, torch.float32), (3, 9, torch.float64), (1, 5, torch.float32)):
            real = torch.randn(n_real, generator=generator, dtype=dtype) * 2 + 1
            fake = torch.randn(n_fake, generator=generator, dtype=dtype) * 2 - 1
            got = call(fn, real, fake)
            expect_float_tensor(got, "the loss")
            expect_close(got.reshape(()) if got.numel() == 1 else got, _bce_loss(real.double(), fake.double()),
                         f"the loss for {n_real} real and {n_fake} fake {dtype} logits (each batch's own mean, "
                         "then summed)", atol=1e-5)

    def gradients(fn):
        generator = torch.Generator().manual_seed(2)
        real = (torch.randn(6, generator=generator) * 2).requires_grad_()
        fake = (torch.randn(4, generator=generator) * 2).requires_grad_()
        got = fn(real, fake)
        if not isinstance(got, torch.Tensor) or not got.requires_grad:
            raise CheckFailed("the loss has no autograd graph (avoid .item(), NumPy or torch.tensor(...) on a "
                              "value): the discriminator cannot learn from it")
        got.backward()
        reference_real, reference_fake = real.detach().requires_grad_(), fake.detach().requires_grad_()
        _bce_loss(reference_real, reference_fake).backward()
        if real.grad is None or fake.grad is None:
            raise CheckFailed("no gradient reaches the real or the fake logits")
        expect_close(real.grad, reference_real.grad, "the gradient w.r.t. the real logits", atol=1e-6)
        expect_close(fake.grad, reference_fake.grad, "the gradient w.r.t. the fake logits", atol=1e-6)

    return run_checks("discriminator_loss", fn, [("random logits vs BCE with logits", against_bce),
                                                 ("batches of different sizes and dtypes", unequal_batches),
                                                 ("gradients reach both batches", gradients)])


class _LinearCritic(nn.Module):
    def __init__(self, weight):
        super().__init__()
        self.weight = nn.Parameter(torch.tensor(weight))

    def forward(self, x):
        return x.flatten(1) @ self.weight


class _RecordingCritic(nn.Module):
    """critic(x) = Σ w·x² / 2 per sample (gradient w·x: it depends on where it is taken); records its inputs."""

    def __init__(self, shape, generator):
        super().__init__()
        self.weight = nn.Parameter(torch.rand(shape, generator=generator) + 0.5)
        self.inputs: list[torch.Tensor] = []

    def forward(self, x):
        self.inputs.append(x.detach().clone())
        return 0.5 * (self.weight * x.square()).flatten(1).sum(dim=1)


def _penalty_at(critic, points: torch.Tensor) -> torch.Tensor:
    gradients = critic.weight.detach().double() * points.double()
    return ((gradients.flatten(1).norm(dim=1) - 1) ** 2).mean()


def _mixing_ratios(points, real, fake) -> torch.Tensor:
    """Each x̂_i as real_i·m_i + fake_i·(1 − m_i): the ratios m_i, or a failure when x̂_i is off that segment."""
    direction = (real - fake).double().flatten(1)
    offset = (points.double() - fake.double()).flatten(1)
    ratios = (offset * direction).sum(1) / direction.square().sum(1)
    residual = (offset - ratios[:, None] * direction).abs().max()
    if residual > 1e-4:
        raise CheckFailed("the critic was evaluated at points that are not between each real sample and its fake "
                          "partner: x̂ = ε·real + (1 − ε)·fake, with ε of shape (N, 1, 1, 1) so it broadcasts")
    return ratios


def check_gradient_penalty(fn):
    """``fn(critic, real, fake) -> scalar``: mean over samples of (‖∇ₓ critic(x̂)‖₂ − 1)² at points x̂ between real and fake."""
    def linear_critics(fn):
        for weight, expected in (([0.6, 0.8], 0.0), ([1.2, 1.6], 1.0), ([0.0, 3.0], 4.0)):
            critic = _LinearCritic(weight)
            got = call(fn, critic, torch.randn(8, 2), torch.randn(8, 2))
            expect_type(got, torch.Tensor, "the penalty")
            expect_shape(got, (), "the penalty (a scalar)")
            if not abs(float(got.detach()) - expected) <= 1e-4:  # NaN fails too
                norm = math.hypot(*weight)
                hint = " — square the distance from 1" if abs(float(got.detach()) - abs(norm - 1)) < 1e-4 else ""
                if abs(float(got.detach()) - (norm ** 2 - 1) ** 2) < 1e-4:
                    hint = " — use the gradient's norm, not its squared norm"
                raise CheckFailed(f"a linear critic with slope {norm:g} has penalty (|{norm:g}| − 1)² = {expected:g}; "
                                  f"yours gives {float(got.detach()):.4f}{hint}")

    def per_sample_norms(fn):
        critic = lambda x: 0.5 * x.flatten(1).square().sum(dim=1)  # gradient = x itself
        points = torch.tensor([[0.3, 0.4], [3.0, 0.0]])  # norms 0.5 and 3; real = fake, so x̂ = the points
        got = call(fn, critic, points, points.clone())
        expected = ((0.5 - 1) ** 2 + (3 - 1) ** 2) / 2
        if not abs(float(got.detach()) - expected) <= 1e-4:  # NaN fails too
            raise CheckFailed(f"for gradients of norm 0.5 and 3 the penalty is {expected}, yours gives {float(got.detach()):.4f}"
                              " — take the norm of each sample's gradient, then average the squared distances")

    def interpolation(fn):
        generator = torch.Generator().manual_seed(3)
        for shape in ((64, 3), (48, 2, 3, 3)):
            critic = _RecordingCritic(shape[1:], generator)
            real = torch.randn(shape, generator=generator) * 0.7
            fake = torch.randn(shape, generator=generator) * 0.7 + 0.5
            got = call(fn, critic, real, fake)
            expect_type(got, torch.Tensor, "the penalty")
            if not critic.inputs or critic.inputs[-1].shape != real.shape:
                raise CheckFailed(f"call the critic once on the batch of mixed points x̂ (shape {tuple(real.shape)})")
            points = critic.inputs[-1]
            ratios = _mixing_ratios(points, real, fake)
            if ratios.min() < -1e-6 or ratios.max() > 1 + 1e-6:
                raise CheckFailed(f"mixing ratios should lie in [0, 1], yours range over {ratios.min():.3f}…{ratios.max():.3f}")
            if ratios.max() - ratios.min() < 1e-6:
                where = ("the real samples themselves" if abs(ratios[0] - 1) < 1e-6 else
                         "the fake samples themselves" if abs(ratios[0]) < 1e-6 else f"one ratio {ratios[0]:.3f}")
                raise CheckFailed(f"every sample was mixed with {where}: draw a random ratio per sample, "
                                  "torch.rand(N, 1, …)")
            if ratios.min() > 0.25 or ratios.max() < 0.75:
                raise CheckFailed(f"the ratios of {len(ratios)} samples span only {ratios.min():.2f}…{ratios.max():.2f}: "
                                  "draw them uniformly from [0, 1] (torch.rand)")
            expect_close(got, _penalty_at(critic, points), f"the penalty at your points x̂ for inputs of shape {shape} "
                         "(the norm over all of a sample's values, then the mean over samples)", atol=1e-5)

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
                                               ("random points between real and fake", interpolation),
                                               ("backpropagates into the critic", differentiable)])


def _reference_q_sample(x0, t, noise, alpha_bars):
    bars = as_double(alpha_bars)[t].view(-1, *([1] * (x0.ndim - 1)))
    return bars.sqrt() * as_double(x0) + (1 - bars).sqrt() * as_double(noise)


def check_q_sample(fn):
    """``fn(x0, t, noise, alpha_bars) -> x_t``: √ᾱ_t·x0 + √(1−ᾱ_t)·noise, one timestep per image."""
    def against_diffusers(fn):
        from diffusers import DDPMScheduler

        scheduler = DDPMScheduler(num_train_timesteps=1000)
        generator = torch.Generator().manual_seed(0)
        x0 = torch.rand(6, 1, 8, 8, generator=generator) * 2 - 1
        noise = torch.randn(6, 1, 8, 8, generator=generator)
        t = torch.tensor([0, 10, 250, 500, 750, 999])
        got = call(fn, x0, t, noise, scheduler.alphas_cumprod.clone())
        expect_float_tensor(got, "x_t")
        expect_shape(got, tuple(x0.shape), "x_t")
        expected = scheduler.add_noise(x0, noise, t)
        if not close(got, expected, atol=1e-5):
            bars = scheduler.alphas_cumprod[t].view(-1, 1, 1, 1)
            if close(got, bars * x0 + (1 - bars) * noise, atol=1e-5):
                raise CheckFailed("x_t uses ᾱ and 1 − ᾱ as weights: they are variances, take square roots")
            if close(got[:1], expected[:1], atol=1e-5) and not close(got[-1], expected[-1], atol=1e-5):
                raise CheckFailed("only the first image is right: index alpha_bars with each image's own t")
            raise CheckFailed(f"x_t differs from DDPMScheduler.add_noise by up to {(as_double(got) - expected).abs().max():.4f}")

    def other_shapes_and_dtypes(fn):
        generator = torch.Generator().manual_seed(1)
        alpha_bars = torch.cumprod(1 - torch.linspace(1e-4, 0.05, 50, dtype=torch.float64), 0)
        for shape, dtype, t in (((4, 3, 5, 5), torch.float64, [49, 3, 3, 17]), ((5, 7), torch.float32, [0, 1, 2, 48, 20]),
                                ((1, 2, 4, 4), torch.float32, [30])):
            x0 = torch.randn(shape, generator=generator, dtype=dtype)
            noise = torch.randn(shape, generator=generator, dtype=dtype)
            bars = alpha_bars.to(dtype)
            got = call(fn, x0, torch.tensor(t), noise, bars)
            expect_close(got, _reference_q_sample(x0, torch.tensor(t), noise, bars),
                         f"x_t for x0 of shape {shape} ({dtype}), t = {t}", atol=1e-5)

    return run_checks("q_sample", fn, [("six timesteps vs DDPMScheduler.add_noise", against_diffusers),
                                       ("other shapes, dtypes and schedules", other_shapes_and_dtypes)])
