"""Generated motion with known ground truth, for chapter 09 (video, optical flow).

* :func:`moving_digits` - Moving-MNIST-style clips (N × T × 1 × H × W) whose label is the direction of motion,
  so only a model that uses the *order* of the frames can classify them.
* :func:`smooth_flow` - a smooth, known flow field (a translation plus a gentle rotation and zoom, or random
  smooth noise) and :func:`warp` - a photo moved by it, giving an image pair with exact optical flow.
* :func:`endpoint_error` - the standard optical-flow error, and :func:`flow_to_rgb` - the HSV colour-wheel picture
  of a flow field (hue = direction, brightness = speed).

Flow convention (OpenCV's): ``flow[y, x] = (dx, dy)`` moves pixel (x, y) of the first frame to (x + dx, y + dy)
in the second, i.e. ``second(x + dx, y + dy) ≈ first(x, y)``.
"""

from __future__ import annotations

import math

import numpy as np
import torch

DIRECTIONS: tuple[str, ...] = ("right", "left", "down", "up")
_STEPS = {"right": (1, 0), "left": (-1, 0), "down": (0, 1), "up": (0, -1)}


def moving_digits(digits: torch.Tensor, frames: int = 8, size: int = 48, speed: float = 2.0,
                  generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Clips of each 28×28 digit (N × 1 × 28 × 28 in [0, 1]) moving in a straight line across a ``size`` canvas.

    Returns (clips N × T × 1 × size × size, direction labels N, indices into :data:`DIRECTIONS`). The start is
    random but chosen so the digit stays inside the canvas for all ``frames``.
    """
    if digits.ndim != 4 or digits.shape[1:] != (1, 28, 28):
        raise ValueError(f"expected N × 1 × 28 × 28 digits, got {tuple(digits.shape)}")
    travel = speed * (frames - 1)
    if size - 28 < travel:
        raise ValueError(f"a {size}-pixel canvas is too small for {frames} frames at speed {speed}")
    count = len(digits)
    labels = torch.randint(0, len(DIRECTIONS), (count,), generator=generator)
    clips = torch.zeros(count, frames, 1, size, size)
    free = size - 28
    for i in range(count):
        step_x, step_y = _STEPS[DIRECTIONS[labels[i]]]
        low_x, high_x = (0, free - travel) if step_x > 0 else (travel, free) if step_x < 0 else (0, free)
        low_y, high_y = (0, free - travel) if step_y > 0 else (travel, free) if step_y < 0 else (0, free)
        start_x = low_x + (high_x - low_x) * torch.rand((), generator=generator).item()
        start_y = low_y + (high_y - low_y) * torch.rand((), generator=generator).item()
        for t in range(frames):
            x, y = round(start_x + step_x * speed * t), round(start_y + step_y * speed * t)
            clips[i, t, :, y:y + 28, x:x + 28] = digits[i]
    return clips, labels


def smooth_flow(height: int, width: int, shift: tuple[float, float] = (2.5, -1.5), rotation_degrees: float = 1.0,
                zoom: float = 1.01, noise: float = 0.0, seed: int = 0) -> np.ndarray:
    """A known H × W × 2 float32 flow: an affine motion about the centre, plus optional smooth random motion."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    cx, cy = (width - 1) / 2, (height - 1) / 2
    angle = math.radians(rotation_degrees)
    rx, ry = xs - cx, ys - cy
    moved_x = zoom * (math.cos(angle) * rx - math.sin(angle) * ry) + cx + shift[0]
    moved_y = zoom * (math.sin(angle) * rx + math.cos(angle) * ry) + cy + shift[1]
    flow = np.stack([moved_x - xs, moved_y - ys], axis=-1)
    if noise:
        import cv2

        rng = np.random.default_rng(seed)
        coarse = rng.normal(0, noise, (max(2, height // 32), max(2, width // 32), 2)).astype(np.float32)
        flow += cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    return flow.astype(np.float32)


def warp(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """The second frame of a pair whose first frame is ``image`` and whose true flow is ``flow``.

    Each pixel of the second frame is looked up where it came from. For a smooth flow, inverting it by a few
    fixed-point iterations (p = q − flow(p)) is accurate to a small fraction of a pixel.
    """
    import cv2

    height, width = flow.shape[:2]
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    source_x, source_y = xs.copy(), ys.copy()
    for _ in range(10):  # solve source + flow(source) = target for every target pixel
        flow_x = cv2.remap(flow[..., 0], source_x, source_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        flow_y = cv2.remap(flow[..., 1], source_x, source_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        source_x, source_y = xs - flow_x, ys - flow_y
    return cv2.remap(image, source_x, source_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def endpoint_error(flow: np.ndarray, truth: np.ndarray, margin: int = 0) -> float:
    """Mean end-point error ‖flow − truth‖ in pixels, ignoring a ``margin`` of pixels at the border."""
    if flow.shape != truth.shape:
        raise ValueError(f"flow {flow.shape} and truth {truth.shape} differ in shape")
    difference = np.linalg.norm(flow - truth, axis=-1)
    if margin:
        difference = difference[margin:-margin, margin:-margin]
    return float(difference.mean())


def flow_to_rgb(flow: np.ndarray, max_speed: float | None = None) -> np.ndarray:
    """H × W × 3 uint8 picture of a flow: hue = direction, value = speed (saturating at ``max_speed``)."""
    import cv2

    speed = np.linalg.norm(flow, axis=-1)
    angle = (np.degrees(np.arctan2(flow[..., 1], flow[..., 0])) + 360) % 360
    hsv = np.zeros((*flow.shape[:2], 3), np.uint8)
    hsv[..., 0] = (angle / 2).astype(np.uint8)  # OpenCV stores hue as 0–179 for uint8 images
    hsv[..., 1] = 255
    hsv[..., 2] = np.clip(255 * speed / (max_speed or max(float(speed.max()), 1e-6)), 0, 255).astype(np.uint8)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
