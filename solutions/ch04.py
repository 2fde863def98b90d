"""Reference solutions for chapter 04's exercises (the Dice loss's gradient, instances from a
semantic map, a U-Net block)."""

import numpy as np
import torch
from scipy import ndimage
from torch import nn

from course_utils.models import conv_bn_relu


def dice_loss_gradient(probabilities: torch.Tensor, targets: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    """∂L/∂p of the soft Dice loss L = 1 − (2Σpg + eps) / (Σp + Σg + eps), by the quotient rule."""
    # Boolean targets need no conversion: arithmetic with the probabilities promotes them to their dtype.
    overlap = (probabilities * targets).sum()
    total = probabilities.sum() + targets.sum() + eps
    # Every pixel's gradient depends on the sums over all pixels: Dice is a set-level loss, not a per-pixel one.
    return -(2 * targets * total - (2 * overlap + eps)) / total ** 2


def semantic_to_instances(label_map: torch.Tensor) -> torch.Tensor:
    """Instance ids 1..K for the 4-connected regions of each non-background class; background (0) stays 0."""
    instances = np.zeros(label_map.shape, dtype=np.int64)
    labels = label_map.cpu().numpy()
    count = 0
    for cls in np.unique(labels):
        if cls == 0:
            continue
        # Each class separately: two touching objects of different classes are still two instances.
        regions, found = ndimage.label(labels == cls)
        instances[regions > 0] = regions[regions > 0] + count
        count += found
    return torch.from_numpy(instances)


def unet_block(in_channels: int, out_channels: int) -> nn.Module:
    """(3×3 conv without bias → BatchNorm → ReLU) × 2, spatial size preserved."""
    return nn.Sequential(conv_bn_relu(in_channels, out_channels), conv_bn_relu(out_channels, out_channels))
