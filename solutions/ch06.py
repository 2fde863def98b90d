"""Reference solutions for chapter 06's exercises (attention, patchify, a pre-norm transformer block)."""

import torch


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None):
    """softmax(QKᵀ/√d_k)V; ``mask`` is boolean and True where a query may attend to a key."""
    scores = q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = scores.softmax(dim=-1)
    return weights @ v, weights


def patchify(images: torch.Tensor, patch_size: int) -> torch.Tensor:
    """N×C×H×W → N × (H/p·W/p) × (p·p·C): patches in raster order, each flattened row by row, channels last."""
    batch, channels, height, width = images.shape
    if height % patch_size or width % patch_size:
        raise ValueError(f"image size {height}×{width} is not divisible by patch size {patch_size}")
    rows, cols = height // patch_size, width // patch_size
    patches = images.reshape(batch, channels, rows, patch_size, cols, patch_size)
    return patches.permute(0, 2, 4, 3, 5, 1).reshape(batch, rows * cols, patch_size * patch_size * channels)


def pre_norm_block(tokens: torch.Tensor, block) -> torch.Tensor:
    """ViT's pre-norm block: each sub-layer sees a normalised copy and adds its output back to the stream."""
    tokens = tokens + block.attn(block.norm1(tokens))
    return tokens + block.mlp(block.norm2(tokens))
