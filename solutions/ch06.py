"""Reference solutions for chapter 06's exercises (attention, resampling position embeddings,
Swin's relative position index)."""

import math

import torch
import torch.nn.functional as F


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None):
    """softmax(QKᵀ/√d_k)V; ``mask`` is boolean and True where a query may attend to a key."""
    scores = q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = scores.softmax(dim=-1)
    return weights @ v, weights


def resample_pos_embed(pos_embed: torch.Tensor, new_grid: tuple[int, int], num_prefix_tokens: int = 1) -> torch.Tensor:
    """1 × (P + g·g) × D → 1 × (P + h·w) × D: the grid part resized bicubically, the P prefix tokens kept."""
    prefix, grid = pos_embed[:, :num_prefix_tokens], pos_embed[:, num_prefix_tokens:]
    side = math.isqrt(grid.shape[1])
    # The embedding dimension must become the channels: tokens → (1, D, g, g), not a reshape of the raw memory.
    grid = grid.reshape(1, side, side, -1).permute(0, 3, 1, 2)
    grid = F.interpolate(grid, size=tuple(new_grid), mode="bicubic")  # align_corners=False, as timm does
    grid = grid.permute(0, 2, 3, 1).reshape(1, new_grid[0] * new_grid[1], -1)
    return torch.cat([prefix, grid], dim=1)


def relative_position_index(window_h: int, window_w: int) -> torch.Tensor:
    """(Wh·Ww) × (Wh·Ww) indices into Swin's (2Wh − 1)(2Ww − 1) bias table, for tokens in raster order."""
    tokens = torch.arange(window_h * window_w)
    rows, cols = tokens // window_w, tokens % window_w  # raster order: row by row
    # Offsets of token i from token j, shifted to start at 0, then flattened row-major over the offset grid.
    dy = rows[:, None] - rows[None, :] + window_h - 1
    dx = cols[:, None] - cols[None, :] + window_w - 1
    return dy * (2 * window_w - 1) + dx
