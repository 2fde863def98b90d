"""Checkers for chapter 09's exercises (alpha compositing, the Chamfer distance, farthest-point sampling)."""

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


def _kd_tree_chamfer(a: torch.Tensor, b: torch.Tensor):
    """SciPy's k-d tree: the Chamfer distance and its analytic gradients w.r.t. a and b (float64)."""
    from scipy.spatial import cKDTree

    a_np, b_np = a.detach().double().numpy(), b.detach().double().numpy()
    a_to_b, nearest_in_b = cKDTree(b_np).query(a_np)
    b_to_a, nearest_in_a = cKDTree(a_np).query(b_np)
    value = float(np.mean(a_to_b ** 2) + np.mean(b_to_a ** 2))
    # d/da_i: its own term 2(a_i − b_nn(i))/N, plus 2(a_i − b_j)/M for every b_j whose nearest point is a_i
    grad_a = 2 * (a_np - b_np[nearest_in_b]) / len(a_np)
    grad_b = 2 * (b_np - a_np[nearest_in_a]) / len(b_np)
    np.add.at(grad_a, nearest_in_a, -2 * (b_np - a_np[nearest_in_a]) / len(b_np))
    np.add.at(grad_b, nearest_in_b, -2 * (a_np - b_np[nearest_in_b]) / len(a_np))
    return value, torch.from_numpy(grad_a), torch.from_numpy(grad_b)


def _expect_chamfer(fn, a, b, what, atol=1e-5):
    got = call(fn, a, b)
    expect_type(got, torch.Tensor, f"the Chamfer distance of {what}")
    if got.numel() != 1:
        raise CheckFailed(f"return one number (a 0-dim tensor), got a tensor of shape {tuple(got.shape)}")
    if got.dtype not in (torch.float32, torch.float64):
        raise CheckFailed(f"the Chamfer distance should be a float tensor, got {got.dtype}")
    expected, _, _ = _kd_tree_chamfer(a, b)
    got = got.detach().double().reshape(()).item()
    if math.isclose(got, expected, rel_tol=1e-5, abs_tol=atol):
        return
    a_np, b_np = a.double().numpy(), b.double().numpy()
    squared = ((a_np[:, None] - b_np[None]) ** 2).sum(-1)
    hints = [(np.sqrt(squared).min(1).mean() + np.sqrt(squared).min(0).mean(),
              "that is with plain distances: square each nearest-neighbour distance"),
             (squared.min(1).sum() + squared.min(0).sum(), "that is a sum over the points: take the mean of each direction"),
             (squared.min(1).mean(), "that is only a → b: add the mean from each point of b to its nearest in a"),
             (squared.min(0).mean(), "that is only b → a: add the mean from each point of a to its nearest in b")]
    hint = next((f" — {text}" for value, text in hints
                 if not math.isclose(value, expected, rel_tol=1e-6) and math.isclose(got, value, rel_tol=1e-5, abs_tol=atol)),
                "")
    raise CheckFailed(f"for {what} you return {got:.6g}, expected {expected:.6g}{hint}")


def check_chamfer_distance(fn):
    """``fn(a N×D, b M×D) -> scalar tensor``: mean squared nearest-neighbour distance both ways, differentiable."""
    def hand_made(fn):
        a, b = torch.tensor([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]]), torch.tensor([[0.0, 0.0, 1.0]])
        _expect_chamfer(fn, a, b, "a = {(0,0,0), (1,0,0)} and b = {(0,0,1)} (a → b: (1 + 2)/2, b → a: 1, total 2.5)")
        _expect_chamfer(fn, b, a, "the same clouds swapped (the distance is symmetric)")
        cloud = torch.tensor([[0.5, -1.0], [2.0, 3.0], [0.0, 0.0]], dtype=torch.float64)
        _expect_chamfer(fn, cloud, cloud.flip(0), "a cloud and the same points in another order (distance 0)")

    def random_clouds(fn):
        generator = torch.Generator().manual_seed(0)
        for (n, m, dim), dtype in (((50, 30, 3), torch.float32), ((1, 7, 3), torch.float64), ((7, 1, 3), torch.float32),
                                   ((200, 120, 2), torch.float64), ((64, 64, 3), torch.float32)):
            a = torch.randn(n, dim, generator=generator, dtype=dtype)
            b = torch.randn(m, dim, generator=generator, dtype=dtype) * 0.8 + 0.3
            _expect_chamfer(fn, a, b, f"random clouds of {n} and {m} points in {dim}-D ({dtype})")

    def gradients(fn):
        generator = torch.Generator().manual_seed(1)
        for n, m, dtype in ((12, 20, torch.float64), (9, 4, torch.float32)):
            a = torch.randn(n, 3, generator=generator, dtype=dtype).requires_grad_()
            b = torch.randn(m, 3, generator=generator, dtype=dtype).requires_grad_()
            loss = fn(a, b)
            if not isinstance(loss, torch.Tensor) or not loss.requires_grad:
                raise CheckFailed("the result has no autograd graph: a Chamfer loss must send gradients to both clouds "
                                  "(avoid .item(), NumPy, SciPy's k-d tree or torch.no_grad)")
            loss.sum().backward()
            _, grad_a, grad_b = _kd_tree_chamfer(a, b)
            for name, cloud, expected in (("a", a, grad_a), ("b", b, grad_b)):
                if cloud.grad is None:
                    raise CheckFailed(f"no gradient reaches cloud {name}")
                expect_close(cloud.grad, expected, f"the gradient w.r.t. {name} ({n} and {m} points, {dtype})")

    return run_checks("Chamfer distance", fn, [("hand-made clouds", hand_made),
                                               ("random clouds of unequal sizes, float32 and float64", random_clouds),
                                               ("gradients w.r.t. both clouds", gradients)])


def _loop_farthest_points(points: torch.Tensor, k: int, start: int) -> list[int]:
    """A plain-Python farthest-point sampling in float64: k passes over the points, first index wins ties."""
    rows = points.double().tolist()
    chosen = [start]
    while len(chosen) < k:
        best, best_distance = None, -1.0
        for index, row in enumerate(rows):
            distance = min(math.dist(row, rows[c]) for c in chosen)
            if distance > best_distance:
                best, best_distance = index, distance
        chosen.append(best)
    return chosen


def _as_index_list(got, k: int) -> list[int]:
    if isinstance(got, torch.Tensor):
        if got.dtype.is_floating_point or got.dtype == torch.bool or got.dim() != 1:
            raise CheckFailed(f"return a 1-D integer tensor of indices, got a {got.dtype} tensor of shape "
                              f"{tuple(got.shape)}")
        got = got.tolist()
    elif isinstance(got, np.ndarray):
        if got.dtype.kind not in "iu" or got.ndim != 1:
            raise CheckFailed(f"return a 1-D array of integer indices, got {got.dtype} of shape {got.shape}")
        got = got.tolist()
    if not isinstance(got, (list, tuple)) or not all(isinstance(i, (int, np.integer)) and not isinstance(i, bool)
                                                      for i in got):
        raise CheckFailed(f"return the indices (a 1-D int64 tensor or a list of ints), got {type(got).__name__}")
    if len(got) != k:
        raise CheckFailed(f"asked for k = {k} points, got {len(got)} indices")
    return [int(i) for i in got]


def _expect_farthest(fn, points, k, what, start=None):
    """The default start (0) when ``start`` is None; otherwise it is passed as the third argument."""
    got = _as_index_list(call(fn, points, k) if start is None else call(fn, points, k, start), k)
    start = start or 0
    expected = _loop_farthest_points(points, k, start)
    if got == expected:
        return
    if got[0] != start:
        raise CheckFailed(f"{what}: the first index should be start = {start}, got {got[0]}")
    if len(set(got)) < len(got):
        raise CheckFailed(f"{what}: you chose index {next(i for i in got if got.count(i) > 1)} twice, {got}; "
                          "the next point is the farthest from *all* chosen points (the minimum distance to them)")
    raise CheckFailed(f"{what}: expected indices {expected}, got {got}")


def check_farthest_point_sampling(fn):
    """``fn(points N×D, k, start=0) -> k indices``: greedy farthest-point sampling, ties to the first index."""
    def hand_made(fn):
        line = torch.tensor([[0.0], [1.0], [2.0], [10.0], [4.0]])
        _expect_farthest(fn, line, 3, "points at x = 0, 1, 2, 10, 4 from index 0 (→ 0, 3, 4)")
        _expect_farthest(fn, line, 3, "the same points from start = 3 (→ 3, 0, 4)", start=3)
        square = torch.tensor([[0.0, 0.0], [1.0, 1.0], [1.0, 0.0], [0.0, 1.0], [0.5, 0.5]], dtype=torch.float64)
        _expect_farthest(fn, square, 5, "a square's corners and centre (ties go to the first index: 0, 1, 2, 3, 4)")
        _expect_farthest(fn, square, 1, "k = 1 from start = 4", start=4)

    def random_clouds(fn):
        generator = torch.Generator().manual_seed(0)
        for (n, dim), k, start, dtype in (((100, 3), 10, 0, torch.float32), ((57, 2), 57, 13, torch.float64),
                                          ((30, 3), 2, 29, torch.float32), ((40, 5), 8, 7, torch.float64)):
            points = torch.randn(n, dim, generator=generator, dtype=dtype) * torch.tensor([3.0] + [1.0] * (dim - 1),
                                                                                         dtype=dtype)
            _expect_farthest(fn, points, k, f"{k} of {n} random {dim}-D points ({dtype}) from start = {start}",
                             start=start or None)

    return run_checks("farthest-point sampling", fn, [("hand-made points", hand_made),
                                                      ("random clouds, float32 and float64", random_clouds)])
