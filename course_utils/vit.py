"""The Vision Transformer (Dosovitskiy et al., 2021) written out in plain PyTorch, for chapters 06 and 07.

The module and parameter names follow timm's ``VisionTransformer`` (``patch_embed.proj``, ``cls_token``,
``pos_embed``, ``blocks.N.attn.qkv`` …), so a timm ``state_dict`` loads into :class:`VisionTransformer`
with ``strict=True`` and gives the same logits — the test suite checks ViT-Ti/S/B this way. Chapter 06
teaches each piece and writes the classes out in its notebook cells (the students' copy, to read and
edit); ``tests/test_vit.py`` runs those cells and checks that they give the same state-dict keys and the
same outputs as this module. This copy adds clear errors for wrong input shapes and position embeddings
resampled to other image sizes (chapter 06's DINO crops); chapter 07 reuses the class as CLIP's image
encoder.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class PatchEmbedding(nn.Module):
    """Cut the image into non-overlapping p×p patches and project each to ``dim`` features.

    A convolution with kernel = stride = p *is* "flatten each patch, then one shared linear layer".
    """

    def __init__(self, image_size: int = 224, patch_size: int = 16, in_channels: int = 3, dim: int = 768):
        super().__init__()
        if image_size % patch_size:
            raise ValueError(f"image_size {image_size} is not divisible by patch_size {patch_size}")
        self.patch_size, self.grid_size = patch_size, image_size // patch_size
        self.num_patches = self.grid_size ** 2
        self.proj = nn.Conv2d(in_channels, dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        height, width = images.shape[-2:]
        if height % self.patch_size or width % self.patch_size:
            raise ValueError(f"image size {height}×{width} is not divisible by patch_size {self.patch_size}")
        return self.proj(images).flatten(2).transpose(1, 2)  # N × C × H' × W' → N × (H'W') × C


class MultiHeadSelfAttention(nn.Module):
    """softmax(QKᵀ/√d)V in ``num_heads`` heads; one Linear makes Q, K and V, another mixes the heads.

    With ``keep_attention = True`` the last forward pass's weights (N × heads × T × T) are kept in
    ``attention`` for attention maps and rollout.
    """

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads, self.head_dim = num_heads, dim // num_heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.keep_attention = False
        self.attention: torch.Tensor | None = None

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        batch, length, dim = tokens.shape
        q, k, v = self.qkv(tokens).reshape(batch, length, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        weights = (q @ k.transpose(-2, -1) * self.head_dim ** -0.5).softmax(dim=-1)
        if self.keep_attention:
            self.attention = weights.detach()
        return self.proj((weights @ v).transpose(1, 2).reshape(batch, length, dim))


class MLP(nn.Module):
    """Two linear layers with a GELU between them, applied to every token independently."""

    def __init__(self, dim: int, hidden_dim: int):
        super().__init__()
        self.fc1, self.act, self.fc2 = nn.Linear(dim, hidden_dim), nn.GELU(), nn.Linear(hidden_dim, dim)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(tokens)))


class TransformerBlock(nn.Module):
    """Pre-norm block: x + attention(LN(x)), then x + MLP(LN(x))."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, qkv_bias: bool = True):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = MultiHeadSelfAttention(dim, num_heads, qkv_bias)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = MLP(dim, int(dim * mlp_ratio))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        tokens = tokens + self.attn(self.norm1(tokens))
        return tokens + self.mlp(self.norm2(tokens))


class VisionTransformer(nn.Module):
    """Patch embedding + [CLS] token + learned position embeddings → ``depth`` blocks → LayerNorm → head.

    The defaults are ViT-B/16 at 224×224 (86,567,656 parameters with 1,000 classes).
    :meth:`forward_features` returns all tokens after the final norm; :meth:`embed` the [CLS] token.
    Other image sizes (a multiple of the patch size) work too: the position embeddings are resampled
    to the new patch grid as timm does with ``dynamic_img_size=True`` (DINO's small local crops need it).
    """

    def __init__(self, image_size: int = 224, patch_size: int = 16, in_channels: int = 3, num_classes: int = 1000,
                 dim: int = 768, depth: int = 12, num_heads: int = 12, mlp_ratio: float = 4.0, qkv_bias: bool = True):
        super().__init__()
        self.patch_embed = PatchEmbedding(image_size, patch_size, in_channels, dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.randn(1, self.patch_embed.num_patches + 1, dim) * 0.02)
        self.blocks = nn.Sequential(*[TransformerBlock(dim, num_heads, mlp_ratio, qkv_bias) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.head = nn.Linear(dim, num_classes) if num_classes else nn.Identity()
        nn.init.trunc_normal_(self.cls_token, std=1e-6)

    def position_embeddings(self, grid: tuple[int, int]) -> torch.Tensor:
        """Position embeddings for a ``grid`` of patches: the learned ones, bicubically resampled if needed."""
        trained = self.patch_embed.grid_size
        if tuple(grid) == (trained, trained):
            return self.pos_embed
        cls_position, patch_positions = self.pos_embed[:, :1], self.pos_embed[:, 1:]
        patch_positions = patch_positions.reshape(1, trained, trained, -1).permute(0, 3, 1, 2)
        patch_positions = F.interpolate(patch_positions.float(), size=tuple(grid), mode="bicubic", antialias=True)
        patch_positions = patch_positions.permute(0, 2, 3, 1).flatten(1, 2).to(self.pos_embed.dtype)
        return torch.cat([cls_position, patch_positions], dim=1)

    def forward_features(self, images: torch.Tensor) -> torch.Tensor:
        if images.ndim != 4:
            raise ValueError(f"expected a batch N×C×H×W, got shape {tuple(images.shape)}")
        patches = self.patch_embed(images)
        patch = self.patch_embed.patch_size
        grid = (images.shape[-2] // patch, images.shape[-1] // patch)
        tokens = torch.cat([self.cls_token.expand(len(patches), -1, -1), patches], dim=1)
        return self.norm(self.blocks(tokens + self.position_embeddings(grid)))

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """The final [CLS] token (N × dim): the image representation the head classifies."""
        return self.forward_features(images)[:, 0]

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(images))
