"""Checkers for chapter 05's exercises (DDPM q_sample, a DDIM step with η, the kernel distance of KID).

q_sample and the DDIM step are compared with diffusers' schedulers (``add_noise``, ``DDIMScheduler.step``
with the same noise) and with float64 formulas on other schedules, skips and dtypes; the kernel distance
with torchmetrics' ``poly_mmd`` for equal set sizes and an independent float64 estimate for unequal ones.
"""

from __future__ import annotations

import torch

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


def _reference_ddim(x_t, eps, t, t_prev, alpha_bars, eta, noise, sigma_in_direction=True):
    """Song et al.'s eq. (12) in float64, written independently of the solution."""
    bars = as_double(alpha_bars)
    a_t, a_prev = bars[t], (bars[t_prev] if t_prev >= 0 else torch.tensor(1.0, dtype=torch.float64))
    x_t, eps, noise = as_double(x_t), as_double(eps), as_double(noise)
    x0 = (x_t - torch.sqrt(1 - a_t) * eps) / torch.sqrt(a_t)
    # The clamps never act on a valid step (t_prev < t); they let the hints evaluate a wrapped-around ᾱ.
    sigma = eta * torch.sqrt((1 - a_prev) / (1 - a_t)) * torch.sqrt((1 - a_t / a_prev).clamp(min=0))
    direction = torch.sqrt((1 - a_prev - (sigma ** 2 if sigma_in_direction else 0)).clamp(min=0)) * eps
    return torch.sqrt(a_prev) * x0 + direction + sigma * noise


def _expect_ddim(fn, x_t, eps, t, t_prev, alpha_bars, eta, noise, expected, what):
    got = call(fn, x_t, eps, t, t_prev, alpha_bars, eta, noise)
    expect_float_tensor(got, f"x_prev {what}")
    expect_shape(got, tuple(x_t.shape), f"x_prev {what}")
    if close(got, expected, atol=1e-4, rtol=1e-4):
        return
    hint = ""
    if t_prev < 0 and close(got, _reference_ddim(x_t, eps, t, len(alpha_bars) + t_prev, alpha_bars, eta, noise),
                            atol=1e-4):
        hint = (" — t_prev < 0 is the step to the clean image, where ᾱ = 1; alpha_bars[t_prev] wraps around to the "
                "last (noisiest) entry")
    elif eta and close(got, _reference_ddim(x_t, eps, t, t_prev, alpha_bars, eta, noise, sigma_in_direction=False),
                       atol=1e-4):
        hint = " — the noise σ adds must be taken out of ε̂'s direction: its weight is √(1 − ᾱ_prev − σ²)"
    try:
        expect_close(got, expected, f"x_prev {what}", atol=1e-4, rtol=1e-4)
    except CheckFailed as failure:
        raise CheckFailed(f"{failure}{hint}") from None


def check_ddim_step(fn):
    """``fn(x_t, eps, t, t_prev, alpha_bars, eta, noise) -> x_prev``: √ᾱ'·x̂0 + √(1−ᾱ'−σ²)·ε̂ + σ·noise."""
    def against_diffusers(fn):
        from diffusers import DDIMScheduler

        scheduler = DDIMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2", clip_sample=False,
                                  set_alpha_to_one=True)
        scheduler.set_timesteps(50)  # steps of 20: t → t − 20, and 0 → the clean image
        generator = torch.Generator().manual_seed(0)
        for t, eta in ((980, 0.0), (500, 0.0), (500, 1.0), (260, 0.4), (20, 0.7), (0, 0.0), (0, 1.0)):
            x_t = torch.randn(3, 1, 6, 6, generator=generator)
            eps = torch.randn(3, 1, 6, 6, generator=generator)
            noise = torch.randn(3, 1, 6, 6, generator=generator)
            expected = scheduler.step(eps, t, x_t, eta=eta, variance_noise=noise).prev_sample
            _expect_ddim(fn, x_t, eps, t, t - 20, scheduler.alphas_cumprod.clone(), eta, noise, expected,
                         f"for t = {t} → {t - 20}, η = {eta} (vs DDIMScheduler.step)")

    def other_schedules(fn):
        generator = torch.Generator().manual_seed(1)
        alpha_bars = torch.cumprod(1 - torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64), 0)
        for shape, dtype, t, t_prev, eta in (((5, 7), torch.float64, 999, 700, 0.3), ((2, 3, 4, 4), torch.float32, 301, 0, 1.0),
                                             ((4,), torch.float64, 40, -1, 0.6), ((1, 2, 3), torch.float32, 10, 9, 1.0)):
            x_t, eps, noise = (torch.randn(shape, generator=generator, dtype=dtype) for _ in range(3))
            bars = alpha_bars.to(dtype)
            _expect_ddim(fn, x_t, eps, t, t_prev, bars, eta, noise, _reference_ddim(x_t, eps, t, t_prev, bars, eta, noise),
                         f"for a linear schedule, x_t of shape {shape} ({dtype}), t = {t} → {t_prev}, η = {eta}")

    def deterministic(fn):
        generator = torch.Generator().manual_seed(2)
        alpha_bars = torch.cumprod(1 - torch.linspace(1e-4, 0.02, 100), 0)
        x_t, eps = torch.randn(2, 5, generator=generator), torch.randn(2, 5, generator=generator)
        first = call(fn, x_t, eps, 60, 30, alpha_bars, 0.0, torch.randn(2, 5, generator=generator))
        second = call(fn, x_t, eps, 60, 30, alpha_bars, 0.0, torch.randn(2, 5, generator=generator) * 5)
        if not close(first, second, atol=1e-6):
            raise CheckFailed("with η = 0 the step must not depend on the noise: σ = 0")

    return run_checks("ddim_step", fn, [("seven steps vs DDIMScheduler.step", against_diffusers),
                                        ("other schedules, skips, shapes and dtypes", other_schedules),
                                        ("η = 0 is deterministic", deterministic)])


def _reference_kernel_distance(a, b, degree: int = 3, coef: float = 1.0) -> float:
    """The unbiased estimate, pair by pair over i ≠ j, in float64 (independent of the solution's matrices)."""
    a, b = as_double(a), as_double(b)
    kernel = lambda x, y: (x @ y.T / a.shape[1] + coef) ** degree
    m, n = len(a), len(b)
    off_a = ~torch.eye(m, dtype=torch.bool)
    off_b = ~torch.eye(n, dtype=torch.bool)
    return float(kernel(a, a)[off_a].mean() + kernel(b, b)[off_b].mean() - 2 * kernel(a, b).mean())


def _expect_kernel_distance(fn, a, b, expected: float, what: str, **options) -> None:
    got = call(fn, a, b, **options)
    if isinstance(got, torch.Tensor) and got.numel() == 1 and got.ndim == 0:
        got = got.item()
    expect_type(got, float, f"the kernel distance {what}")
    if abs(got - expected) <= 1e-6 + 1e-5 * abs(expected):
        return
    degree, coef = options.get("degree", 3), options.get("coef", 1.0)
    d, hint = a.shape[1], ""
    biased = float(((as_double(a) @ as_double(a).T / d + coef) ** degree).mean()
                   + ((as_double(b) @ as_double(b).T / d + coef) ** degree).mean()
                   - 2 * ((as_double(a) @ as_double(b).T / d + coef) ** degree).mean())
    if abs(got - biased) <= 1e-6 + 1e-5 * abs(biased):
        hint = " — leave out the pairs (x, x): with them the estimate is biased upwards"
    raise CheckFailed(f"your kernel distance {what} is {got:.6g}, expected {expected:.6g}{hint}")


def check_kernel_distance(fn):
    """``fn(features_a, features_b, degree=3, coef=1.0) -> float``: unbiased MMD² with (x·y/d + coef)^degree."""
    def hand_made(fn):
        basis = torch.eye(2)
        _expect_kernel_distance(fn, basis, basis.clone(), -2.375,
                                "of the set {e1, e2} with itself (unbiased, so it can be below 0)")
        _expect_kernel_distance(fn, torch.zeros(3, 4), torch.zeros(2, 4), 0.0, "of two sets of zero vectors")

    def against_torchmetrics(fn):
        from torchmetrics.image.kid import poly_mmd

        generator = torch.Generator().manual_seed(0)
        for n, d, shift in ((20, 8, 0.5), (6, 3, 0.0), (50, 16, 1.5)):
            a = torch.randn(n, d, generator=generator)
            b = torch.randn(n, d, generator=generator) + shift
            _expect_kernel_distance(fn, a, b, float(poly_mmd(a.double(), b.double())),
                                    f"of two sets of {n} {d}-D features (vs torchmetrics' poly_mmd)")

    def unequal_sizes_and_options(fn):
        generator = torch.Generator().manual_seed(1)
        for m, n, d, dtype, options in ((7, 12, 5, torch.float32, {}), (15, 4, 6, torch.float64, {"degree": 2}),
                                        (9, 9, 3, torch.float64, {"coef": 0.5}),
                                        (2, 3, 4, torch.float32, {"degree": 1, "coef": 2.0})):
            a = torch.randn(m, d, generator=generator, dtype=dtype)
            b = torch.randn(n, d, generator=generator, dtype=dtype) * 1.3 + 0.2
            _expect_kernel_distance(fn, a, b, _reference_kernel_distance(a, b, **options),
                                    f"of {m} and {n} {d}-D {dtype} features with {options or 'the defaults'}", **options)

    return run_checks("kernel_distance", fn, [("hand-made sets", hand_made), ("vs torchmetrics", against_torchmetrics),
                                              ("unequal sizes, dtypes, degree and coef", unequal_sizes_and_options)])
