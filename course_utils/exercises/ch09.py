"""Checkers for chapter 09's exercises (alpha compositing, a Lucas–Kanade step, the bad-pixel rate)."""

from __future__ import annotations

import math

import numpy as np
import torch

from ..checks import (
    CheckFailed,
    as_double,
    call,
    close,
    expect_close,
    expect_shape,
    expect_type,
    is_real,
    run_checks,
)


def _reference_composite(densities, colours, deltas):
    alphas = 1 - torch.exp(-densities * deltas)
    transmittance = torch.cumprod(torch.cat([torch.ones_like(alphas[:, :1]), 1 - alphas[:, :-1]], dim=1), dim=1)
    weights = transmittance * alphas
    return (weights[..., None] * colours).sum(dim=1), weights


def check_composite(fn):
    """``fn(densities R×S, colours R×S×3, deltas R×S) -> (colour R×3, weights R×S)``."""
    def random_rays(fn):
        generator = torch.Generator().manual_seed(0)
        densities = torch.rand(4, 16, generator=generator) * 3
        colours = torch.rand(4, 16, 3, generator=generator)
        deltas = torch.rand(4, 16, generator=generator) * 0.2 + 0.05
        got = call(fn, densities, colours, deltas)
        if not isinstance(got, tuple) or len(got) != 2:
            raise CheckFailed("return a pair (colour, weights)")
        colour, weights = got
        expect_type(weights, torch.Tensor, "the weights")
        expect_shape(weights, (4, 16), "the weights (one per sample)")
        expect_shape(colour, (4, 3), "the colour (one RGB per ray)")
        expected_colour, expected_weights = _reference_composite(densities, colours, deltas)
        if not close(weights, expected_weights, atol=1e-5):
            alphas = 1 - torch.exp(-densities * deltas)
            if close(weights, torch.cumprod(1 - alphas, dim=1) * alphas, atol=1e-5):
                raise CheckFailed("T_i must only count the samples *before* i: shift the cumulative product by one")
            if close(weights, alphas, atol=1e-5):
                raise CheckFailed("the weights are just the opacities: multiply by the transmittance T_i")
            no_delta = 1 - torch.exp(-densities)
            if close(weights, torch.cumprod(torch.cat([torch.ones_like(no_delta[:, :1]), 1 - no_delta[:, :-1]], 1), 1)
                     * no_delta, atol=1e-5):
                raise CheckFailed("the spacing δ is missing: α = 1 − exp(−σ·δ)")
            raise CheckFailed(f"the weights differ from w_i = T_i·α_i by up to "
                              f"{(as_double(weights) - expected_weights.double()).abs().max():.4f}")
        expect_close(colour, expected_colour, "the composited colour Σ w_i c_i")

    def fog(fn):
        densities = torch.full((1, 50), 0.7)
        _, weights = call(fn, densities, torch.ones(1, 50, 3), torch.full((1, 50), 2.0 / 50))
        if not math.isclose(weights.sum().item(), 1 - math.exp(-1.4), abs_tol=1e-5):
            raise CheckFailed(f"a uniform fog (σ = 0.7 over length 2) must have opacity 1 − exp(−1.4) = "
                              f"{1 - math.exp(-1.4):.5f}; your weights sum to {weights.sum().item():.5f}")

    def edge_rays(fn):
        generator = torch.Generator().manual_seed(1)
        colours = torch.rand(3, 4, 3, generator=generator, dtype=torch.float64)
        densities = torch.tensor([[0.0, 0.0, 0.0, 0.0],      # empty space: nothing is seen
                                  [50.0, 1.0, 1.0, 1.0],     # an opaque first sample hides the rest
                                  [0.0, 2.0, 0.5, 3.0]], dtype=torch.float64)
        deltas = torch.tensor([[0.1, 0.2, 0.3, 0.4]] * 3, dtype=torch.float64)
        for what, d, c, delta in (("empty, opaque-first and mixed float64 rays", densities, colours, deltas),
                                  ("rays of one sample", densities[:, 1:2].float(), colours[:, 1:2].float(),
                                   deltas[:, 1:2].float())):
            colour, weights = call(fn, d, c, delta)
            expected_colour, expected_weights = _reference_composite(d.double(), c.double(), delta.double())
            expect_close(weights, expected_weights, f"the weights of {what}")
            expect_close(colour, expected_colour, f"the colours of {what}")

    return run_checks("alpha compositing", fn, [("random rays", random_rays), ("a uniform fog", fog),
                                                ("empty, opaque and one-sample rays, float64", edge_rays)])


def check_lucas_kanade_step(fn):
    """``fn(ix, iy, it) -> (dx, dy)`` for one window, solving the 2 × 2 least-squares system."""
    def known_motion(fn):
        generator = np.random.default_rng(0)
        for dx, dy in ((0.6, -0.3), (-0.2, 0.9)):
            ix, iy = generator.normal(size=(7, 7)), generator.normal(size=(7, 7))
            it = -(ix * dx + iy * dy)  # exact brightness constancy for a motion (dx, dy)
            got = call(fn, ix, iy, it)
            if not isinstance(got, tuple) or len(got) != 2:
                raise CheckFailed("return a pair (dx, dy)")
            if not all(is_real(v) for v in got):
                raise CheckFailed("return two Python numbers")
            if np.allclose(got, (-dx, -dy), atol=1e-6):
                raise CheckFailed("the sign is flipped: the equation is Ix·dx + Iy·dy + It = 0, so b = −(ΣIx·It, ΣIy·It)")
            if np.allclose(got, (dy, dx), atol=1e-6):
                raise CheckFailed("dx and dy are swapped")
            if not np.allclose(got, (dx, dy), atol=1e-6):
                raise CheckFailed(f"a window moved by ({dx}, {dy}) gave {got}")

    def noisy(fn):
        generator = np.random.default_rng(1)
        ix, iy = generator.normal(size=(9, 9)), generator.normal(size=(9, 9))
        it = -(ix * 0.4 + iy * 0.1) + 0.05 * generator.normal(size=(9, 9))
        a = np.array([[np.sum(ix * ix), np.sum(ix * iy)], [np.sum(ix * iy), np.sum(iy * iy)]])
        expected = np.linalg.solve(a, -np.array([np.sum(ix * it), np.sum(iy * it)]))
        if not np.allclose(call(fn, ix, iy, it), expected, atol=1e-6):
            raise CheckFailed("with noise the answer is the least-squares solution of the normal equations "
                              "(AᵀA)v = −Aᵀb, not a solution of one pixel's equation")

    def other_windows(fn):
        generator = np.random.default_rng(2)
        for shape, dx, dy in (((3, 3), 1.5, 0.0), ((5, 11), -0.7, -1.2), ((15, 15), 0.0, 0.25)):
            ix, iy = generator.normal(size=shape), generator.normal(size=shape) * 2
            it = -(ix * dx + iy * dy) + 0.01 * generator.normal(size=shape)
            a = np.array([[np.sum(ix * ix), np.sum(ix * iy)], [np.sum(ix * iy), np.sum(iy * iy)]])
            expected = np.linalg.solve(a, -np.array([np.sum(ix * it), np.sum(iy * it)]))
            got = call(fn, ix, iy, it)
            if not isinstance(got, tuple) or len(got) != 2 or not np.allclose(got, expected, atol=1e-6):
                raise CheckFailed(f"for a {shape[0]}×{shape[1]} window the least-squares motion is "
                                  f"({expected[0]:.4f}, {expected[1]:.4f}), got {got}")

    return run_checks("Lucas–Kanade step", fn, [("exact motions", known_motion), ("with noise", noisy),
                                                ("other window sizes", other_windows)])


def check_bad_pixel_rate(fn):
    """``fn(estimate, truth, threshold) -> float``: share of valid pixels off by more than ``threshold``."""
    def table(fn):
        truth = np.array([[10.0, 12.0, np.inf, 5.0], [0.0, 8.0, 20.0, 6.0]])  # inf and 0 are "no ground truth"
        estimate = np.array([[10.5, 15.0, 3.0, 5.2], [1.0, 10.0, 17.5, 6.1]])
        # valid errors 0.5, 3, 0.2, 2 (not > 2), 2.5, 0.1: 2 of 6 are bad
        got = call(fn, estimate, truth, 2.0)
        if not is_real(got):
            raise CheckFailed(f"return a Python float, got {type(got).__name__}")
        if math.isclose(got, 100 / 3):
            raise CheckFailed("return a fraction, not a percentage")
        if math.isclose(got, 3 / 6):
            raise CheckFailed("an error of exactly 2 px is not *more than* 2 px: use >, not >=")
        if math.isclose(got, 3 / 8) or math.isclose(got, 4 / 8):
            raise CheckFailed("pixels without ground truth (0 or inf) must be left out")
        if not math.isclose(got, 1 / 3):
            raise CheckFailed(f"2 of the 6 valid pixels are off by more than 2 px (1/3); got {got}")
        strict = call(fn, estimate, truth, 0.4)  # errors 0.5, 3, 2, 2.5 exceed 0.4: 4 of 6
        if not math.isclose(strict, 4 / 6):
            raise CheckFailed(f"with threshold 0.4, 4 of the 6 valid pixels are bad; got {strict} "
                              "(use the threshold argument, not a fixed 2)")

    def invalid_kinds(fn):
        truth = np.array([[10.0, -4.0, np.nan, 5.0, -np.inf], [7.0, 0.0, 3.0, -1.0, 9.0]])
        estimate = np.array([[13.0, 1.0, 2.0, 5.5, 0.0], [7.1, 9.0, 0.5, -1.0, 12.5]])
        # valid: 10, 5, 7, 3, 9 with errors 3, 0.5, 0.1, 2.5, 3.5 → 3 of 5 are bad at threshold 2
        got = call(fn, estimate, truth)
        if not is_real(got):
            raise CheckFailed(f"return a Python float, got {type(got).__name__}")
        if math.isclose(got, 4 / 7):  # what keeping the negative (and only dropping 0, NaN, ±inf) gives
            raise CheckFailed("negative true disparities are not valid ground truth: keep only finite values > 0")
        if not math.isclose(got, 3 / 5):
            raise CheckFailed(f"with NaN, −inf, 0 and negative true disparities left out, 3 of the 5 valid pixels are "
                              f"off by more than 2 px (0.6, with the default threshold 2); got {got}")

    def random(fn):
        generator = np.random.default_rng(3)
        truth = generator.uniform(-5, 40, size=(12, 17))
        truth[generator.random(truth.shape) < 0.1] = np.inf
        estimate = truth + generator.normal(scale=3, size=truth.shape)
        valid = np.isfinite(truth) & (truth > 0)
        for threshold in (1.0, 3.0):
            expected = float(np.mean(np.abs(estimate[valid] - truth[valid]) > threshold))
            got = call(fn, estimate, truth, threshold)
            if not is_real(got) or not math.isclose(got, expected, abs_tol=1e-9):
                raise CheckFailed(f"for a random 12×17 disparity map and threshold {threshold} the bad-pixel rate is "
                                  f"{expected:.4f}, got {got}")

    return run_checks("bad-pixel rate", fn, [("a 2 × 3 table", table), ("NaN, −inf and negative ground truth", invalid_kinds),
                                             ("a random map, two thresholds", random)])
