"""Reference solutions for chapter 01's exercises (pixels and classical computer vision)."""

import numpy as np
import torch
import torch.nn.functional as F


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


def otsu_threshold(image: np.ndarray) -> int:
    """uint8 H×W with at least two grey levels → Otsu's threshold t (levels ≤ t dark, > t bright).

    t maximises the between-class variance w_dark·w_bright·(μ_dark − μ_bright)², computed from the
    histogram for every candidate t at once; ties go to the smallest t, as ``cv2.threshold`` with
    ``THRESH_OTSU`` returns.
    """
    histogram = np.bincount(image.ravel(), minlength=256).astype(np.float64)
    levels = np.arange(len(histogram))
    count_dark = np.cumsum(histogram)  # pixels at or below each candidate t
    count_bright = image.size - count_dark
    sum_dark = np.cumsum(histogram * levels)
    sum_bright = sum_dark[-1] - sum_dark
    with np.errstate(divide="ignore", invalid="ignore"):  # an empty class gives 0/0: no split there
        between = count_dark * count_bright * (sum_dark / count_dark - sum_bright / count_bright) ** 2
    # argmax returns the first maximum; NaN (an empty class) must never win, so it counts as −1.
    return int(np.argmax(np.nan_to_num(between, nan=-1.0)))
