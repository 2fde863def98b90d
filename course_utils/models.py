"""Models that one chapter teaches and later chapters reuse.

``SmallCNN`` is chapter 02's modern small CNN (conv–BN–ReLU blocks, max-pooling, dropout). Chapter 02
trains it on MNIST and Fashion-MNIST and commits the checkpoints; later chapters load them (GAN sample
scoring and Fréchet features in 05, export and benchmarking in 08). A test checks that the class the
chapter 02 notebook defines is this one.
"""

from __future__ import annotations

import torch
from torch import nn


def conv_bn_relu(in_channels: int, out_channels: int) -> nn.Sequential:
    """3×3 convolution (no bias: BatchNorm has its own shift) → BatchNorm → ReLU, size preserved."""
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
                         nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))


class SmallCNN(nn.Module):
    """Two stages of two conv–BN–ReLU blocks with max-pooling, then a dropout MLP head.

    For 28×28 inputs: 1×28×28 → w1×14×14 → w2×7×7 → ``hidden`` features → ``num_classes`` logits.
    ``features`` (the convolutional trunk) and ``head`` are separate so transfer learning can freeze
    or re-learn them independently; :meth:`embed` returns the ``hidden``-dimensional penultimate features.
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 10, widths: tuple[int, int] = (16, 32),
                 hidden: int = 128, dropout: float = 0.3, image_size: int = 28):
        super().__init__()
        if image_size % 4:
            raise ValueError(f"image_size must be divisible by 4 (two 2×2 poolings), got {image_size}")
        first, second = widths
        self.features = nn.Sequential(
            conv_bn_relu(in_channels, first), conv_bn_relu(first, first), nn.MaxPool2d(2),
            conv_bn_relu(first, second), conv_bn_relu(second, second), nn.MaxPool2d(2))
        flat = second * (image_size // 4) ** 2
        self.neck = nn.Sequential(nn.Flatten(), nn.Dropout(dropout), nn.Linear(flat, hidden), nn.ReLU(inplace=True))
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(hidden, num_classes))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features (N × hidden): what a linear probe or a Fréchet distance uses."""
        if x.ndim != 4:
            raise ValueError(f"expected a batch N×C×H×W, got shape {tuple(x.shape)}")
        return self.neck(self.features(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(x))
