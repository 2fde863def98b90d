"""2-D Gaussian splatting on the CPU, for chapter 09: the renderer of 3D Gaussian splatting without the 3-D part.

3D Gaussian splatting (Kerbl et al., 2023) projects every 3-D Gaussian into the image, where it becomes a 2-D
Gaussian (a mean and a 2 × 2 covariance, :func:`project`), sorts them by depth and alpha-composites them front to
back. This module does the 2-D part in plain PyTorch, differentiably, so that a set of 2-D Gaussians can be fitted
to an image by gradient descent:

* :func:`covariances` - Σ = R diag(s)² Rᵀ from a rotation angle and two scales (always symmetric positive definite);
* :func:`render` - front-to-back alpha compositing of N Gaussians, given nearest first, onto an H × W image;
* :class:`Gaussians2D` - learnable, unconstrained parameters (exp / sigmoid map them to valid values) that render;
* :func:`project` - a 3-D Gaussian seen by a pinhole camera: its 2-D mean and the covariance J Σ Jᵀ of the local
  affine approximation of the projection (EWA splatting, as 3DGS does it).

Pixel convention: pixel (row y, column x) sits at the coordinates (x, y), so a Gaussian with mean (x, y) is
centred on ``image[y, x]``. Every pixel is composited against every Gaussian (no tiles, no cut-off radius): fine
for the few hundred Gaussians and few thousand pixels of a toy, not for a real scene.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def covariances(angles: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
    """N × 2 × 2 covariances R(θ) diag(s_x², s_y²) R(θ)ᵀ from N angles (radians) and N × 2 positive scales."""
    if angles.ndim != 1 or scales.shape != (len(angles), 2):
        raise ValueError(f"expected N angles and N × 2 scales, got {tuple(angles.shape)} and {tuple(scales.shape)}")
    cos, sin = torch.cos(angles), torch.sin(angles)
    rotation = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2)  # N × 2 × 2
    return rotation @ torch.diag_embed(scales ** 2) @ rotation.transpose(-1, -2)


def render(means: torch.Tensor, covs: torch.Tensor, colours: torch.Tensor, opacities: torch.Tensor,
           height: int, width: int, background=(0.0, 0.0, 0.0), max_alpha: float = 0.99) -> torch.Tensor:
    """Composite N 2-D Gaussians, listed front (index 0) to back, into an H × W × C image.

    Gaussian i covers pixel p with α_i(p) = min(opacity_i · exp(−½ (p − μ_i)ᵀ Σ_i⁻¹ (p − μ_i)), ``max_alpha``)
    (3DGS caps α at 0.99 too), and the pixel's colour is Σ_i T_i α_i c_i + T_N · background with the
    transmittance T_i = Π_{j<i} (1 − α_j): the volume-rendering sum of a NeRF, with one "sample" per Gaussian.

    ``means`` N × 2 as (x, y) pixels, ``covs`` N × 2 × 2, ``colours`` N × C, ``opacities`` N in [0, 1].
    """
    count = len(means)
    if means.shape != (count, 2) or covs.shape != (count, 2, 2) or colours.ndim != 2 or len(colours) != count \
            or opacities.shape != (count,):
        raise ValueError("expected means N × 2, covs N × 2 × 2, colours N × C and opacities N, got "
                         f"{tuple(means.shape)}, {tuple(covs.shape)}, {tuple(colours.shape)}, {tuple(opacities.shape)}")
    if not 0 < max_alpha <= 1:
        raise ValueError(f"max_alpha must be in (0, 1], got {max_alpha}")
    background = torch.as_tensor(background, dtype=colours.dtype, device=colours.device).expand(colours.shape[1])
    ys, xs = torch.meshgrid(torch.arange(height, dtype=means.dtype, device=means.device),
                            torch.arange(width, dtype=means.dtype, device=means.device), indexing="ij")
    dx, dy = xs.reshape(1, -1) - means[:, :1], ys.reshape(1, -1) - means[:, 1:]  # N × P offsets from the means
    a, b, c = covs[:, 0, 0, None], covs[:, 0, 1, None], covs[:, 1, 1, None]  # Σ = [[a, b], [b, c]]
    mahalanobis = (c * dx ** 2 - 2 * b * dx * dy + a * dy ** 2) / (a * c - b ** 2)  # (p − μ)ᵀ Σ⁻¹ (p − μ)
    alphas = (opacities[:, None] * torch.exp(-0.5 * mahalanobis)).clamp(max=max_alpha)  # N × P
    survive = torch.cumprod(1 - alphas, dim=0)  # light left after Gaussians 0..i
    transmittance = torch.cat([torch.ones_like(alphas[:1]), survive[:-1]])  # T_i: after Gaussians 0..i−1
    image = (transmittance * alphas).T @ colours + survive[-1, :, None] * background  # P × C
    return image.view(height, width, -1)


class Gaussians2D(nn.Module):
    """``count`` learnable 2-D Gaussians for an H × W image; ``forward()`` renders them (H × W × 3).

    Parameters are unconstrained: scales = exp(log_scales), colours = sigmoid(colour_logits), opacities =
    sigmoid(opacity_logits). They start at random positions and angles, as grey, half-transparent, round blobs
    of radius ``scale`` pixels (default: about half the spacing of ``count`` blobs laid out on a grid).
    The order of the Gaussians is their depth order: index 0 is in front.
    """

    def __init__(self, count: int, height: int, width: int, scale: float | None = None,
                 generator: torch.Generator | None = None, background=(0.0, 0.0, 0.0)):
        super().__init__()
        if count < 1 or height < 1 or width < 1:
            raise ValueError(f"count, height and width must be ≥ 1, got {count}, {height}, {width}")
        scale = 0.5 * math.sqrt(height * width / count) if scale is None else scale
        self.height, self.width, self.background = height, width, background
        self.means = nn.Parameter(torch.rand(count, 2, generator=generator) * torch.tensor([width - 1, height - 1]))
        self.angles = nn.Parameter(torch.rand(count, generator=generator) * math.pi)
        self.log_scales = nn.Parameter(torch.full((count, 2), math.log(scale)))
        self.colour_logits = nn.Parameter(torch.zeros(count, 3))
        self.opacity_logits = nn.Parameter(torch.zeros(count))

    def covariances(self) -> torch.Tensor:
        return covariances(self.angles, self.log_scales.exp())

    def forward(self) -> torch.Tensor:
        return render(self.means, self.covariances(), torch.sigmoid(self.colour_logits),
                      torch.sigmoid(self.opacity_logits), self.height, self.width, self.background)


def project(means: torch.Tensor, covs: torch.Tensor, focal: float, centre: tuple[float, float]):
    """Project N 3-D Gaussians (camera coordinates, z > 0 in front) with a pinhole camera to 2-D Gaussians.

    The mean goes to (f·x/z + c_x, f·y/z + c_y). The projection is not linear, so a 3-D Gaussian does not map
    to an exact 2-D one; 3DGS (after EWA splatting, Zwicker et al., 2001) linearises it at the mean, whose
    Jacobian J = [[f/z, 0, −f·x/z²], [0, f/z, −f·y/z²]] turns the covariance Σ into J Σ Jᵀ.
    Returns (means N × 2, covariances N × 2 × 2).
    """
    if means.ndim != 2 or means.shape[1] != 3 or covs.shape != (len(means), 3, 3):
        raise ValueError(f"expected means N × 3 and covs N × 3 × 3, got {tuple(means.shape)} and {tuple(covs.shape)}")
    if not bool((means[:, 2] > 0).all()):
        raise ValueError("every Gaussian must lie in front of the camera (z > 0)")
    x, y, z = means.unbind(-1)
    zero = torch.zeros_like(z)
    jacobian = torch.stack([torch.stack([focal / z, zero, -focal * x / z ** 2], -1),
                            torch.stack([zero, focal / z, -focal * y / z ** 2], -1)], -2)  # N × 2 × 3
    projected = torch.stack([focal * x / z + centre[0], focal * y / z + centre[1]], -1)
    return projected, jacobian @ covs @ jacobian.transpose(-1, -2)
