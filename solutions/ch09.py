"""Reference solutions for chapter 09's exercises (alpha compositing, a Lucas–Kanade step, the bad-pixel rate)."""

import numpy as np
import torch


def composite(densities: torch.Tensor, colours: torch.Tensor, deltas: torch.Tensor):
    """(colour R × 3, weights R × S): α = 1 − exp(−σδ), T_i = Π_{j<i}(1 − α_j), w = T·α, C = Σ w·c."""
    alphas = 1 - torch.exp(-densities * deltas)
    transmittance = torch.cumprod(torch.cat([torch.ones_like(alphas[:, :1]), 1 - alphas[:, :-1]], dim=1), dim=1)
    weights = transmittance * alphas
    return (weights[..., None] * colours).sum(dim=1), weights


def lucas_kanade_step(ix: np.ndarray, iy: np.ndarray, it: np.ndarray) -> tuple[float, float]:
    """Least-squares (dx, dy) with ix·dx + iy·dy + it = 0 over one window (the 2 × 2 normal equations)."""
    a = np.array([[np.sum(ix * ix), np.sum(ix * iy)], [np.sum(ix * iy), np.sum(iy * iy)]])
    b = -np.array([np.sum(ix * it), np.sum(iy * it)])
    dx, dy = np.linalg.solve(a, b)
    return float(dx), float(dy)


def bad_pixel_rate(estimate: np.ndarray, truth: np.ndarray, threshold: float = 2.0) -> float:
    """Share of pixels with a valid (finite, positive) true disparity whose estimate is off by more than threshold."""
    valid = np.isfinite(truth) & (truth > 0)
    return float((np.abs(estimate[valid] - truth[valid]) > threshold).mean())
