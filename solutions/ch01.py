"""Reference solutions for chapter 01's exercises (pixels and classical computer vision)."""

import numpy as np
import torch
import torch.nn.functional as F

# ITU-R BT.601 luma weights for R, G, B: the eye is most sensitive to green, least to blue.
BT601 = np.array([0.299, 0.587, 0.114])

SOBEL_X = torch.tensor([[-1.0, 0.0, 1.0],
                        [-2.0, 0.0, 2.0],
                        [-1.0, 0.0, 1.0]])


def conv2d(image: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """H×W float image, k×k kernel (k odd) → H×W: cross-correlation with zero padding, like F.conv2d.

    out[y, x] = Σ_{i,j} kernel[i, j] · padded[y + i, x + j]: the kernel is *not* flipped (flipping it
    would be true convolution); CNN layers and ``F.conv2d`` compute this cross-correlation.
    """
    k = kernel.shape[0]
    pad = k // 2
    height, width = image.shape
    padded = F.pad(image, (pad, pad, pad, pad))  # zeros all round, so the output keeps H×W
    out = torch.zeros_like(image)
    for i in range(k):  # one shifted copy of the image per kernel tap: k² vectorised steps, no pixel loop
        for j in range(k):
            out += kernel[i, j] * padded[i:i + height, j:j + width]
    return out


def rgb_to_gray(image: np.ndarray) -> np.ndarray:
    """uint8 H×W×3 RGB → uint8 H×W luma Y = 0.299 R + 0.587 G + 0.114 B, rounded to the nearest level."""
    luma = image.astype(np.float64) @ BT601
    # np.rint rounds; .astype alone would truncate (pure green: 149.685 → 149 instead of 150).
    return np.rint(luma).astype(np.uint8)


def sobel_magnitude(image: torch.Tensor) -> torch.Tensor:
    """H×W float image → H×W gradient magnitude sqrt(gx² + gy²) from the 3×3 Sobel kernels."""
    kernel_x = SOBEL_X.to(image.dtype)
    gx = conv2d(image, kernel_x)  # responds to vertical edges (change along x)
    gy = conv2d(image, kernel_x.T)  # responds to horizontal edges (change along y)
    return torch.sqrt(gx ** 2 + gy ** 2)


def equalize_histogram(image: np.ndarray) -> np.ndarray:
    """uint8 H×W → uint8 H×W with a flattened histogram; matches ``cv2.equalizeHist`` exactly.

    Each grey level i maps to lut[i] = round((cdf[i] − cdf_min) · 255 / (N − cdf_min)), where cdf is the
    cumulative histogram, cdf_min its value at the darkest level present and N the number of pixels: the
    darkest level becomes 0, the brightest 255. A constant image (N == cdf_min) comes back unchanged.
    """
    histogram = np.bincount(image.ravel(), minlength=256)
    cdf = np.cumsum(histogram)
    cdf_min = cdf[np.flatnonzero(histogram)[0]]
    total = image.size
    if cdf_min == total:  # one grey level only: nothing to spread out (OpenCV returns the image as is)
        return image.copy()
    # OpenCV computes the scale in float32 and rounds half to even (np.rint); doing the same makes the
    # result identical bit for bit, even where the exact value sits halfway between two levels.
    scale = np.float32(255) / np.float32(total - cdf_min)
    lut = np.rint((cdf - cdf_min).astype(np.float32) * scale)
    return np.clip(lut, 0, 255).astype(np.uint8)[image]
