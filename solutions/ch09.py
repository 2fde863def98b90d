"""Reference solutions for chapter 09's exercises (alpha compositing, the Chamfer distance, farthest-point sampling)."""

import torch


def composite(densities: torch.Tensor, colours: torch.Tensor, deltas: torch.Tensor):
    """(colour R × 3, weights R × S): α = 1 − exp(−σδ), T_i = Π_{j<i}(1 − α_j), w = T·α, C = Σ w·c."""
    alphas = 1 - torch.exp(-densities * deltas)
    transmittance = torch.cumprod(torch.cat([torch.ones_like(alphas[:, :1]), 1 - alphas[:, :-1]], dim=1), dim=1)
    weights = transmittance * alphas
    return (weights[..., None] * colours).sum(dim=1), weights


def chamfer_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean squared distance from each point of ``a`` to its nearest in ``b``, plus the same from ``b`` to ``a``."""
    squared = ((a[:, None, :] - b[None, :, :]) ** 2).sum(dim=-1)  # N × M, every pair; min = nearest neighbour
    # a mean per direction, so a cloud of 10 points counts as much as one of 10,000
    return squared.min(dim=1).values.mean() + squared.min(dim=0).values.mean()


def farthest_point_sampling(points: torch.Tensor, k: int, start: int = 0) -> torch.Tensor:
    """Indices of ``k`` points spread over the cloud: each next one is the farthest from all chosen so far."""
    chosen = [start]
    # distance of every point to its nearest chosen point; updated with one new point per step, O(N·k) in all
    nearest = (points - points[start]).norm(dim=1)
    for _ in range(k - 1):
        chosen.append(int(nearest.argmax()))  # argmax: the first of equally far points
        nearest = torch.minimum(nearest, (points - points[chosen[-1]]).norm(dim=1))
    return torch.tensor(chosen)  # Python ints become an int64 tensor
