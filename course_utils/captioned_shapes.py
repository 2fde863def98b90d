"""Captioned shapes for chapter 07: 32×32 images of one coloured shape, each with an exact English caption.

Every image shows one of 6 colours × 4 shapes × 2 sizes × 4 positions (192 *combinations*), drawn with
random jitter (±2 px position, ±20 % size, brightness, pixel noise), and the caption says all four
attributes: ``"a small red circle on the left"``. :data:`HELD_OUT` names six colour–shape pairs (one per
colour, each shape at least once) that training never shows, neither as images nor as captions, so a
model that recognises "a red triangle" must compose "red" and "triangle" learned from other pairs: the
zero-shot test of the chapter.

Main entry points: :data:`COMBINATIONS`, :data:`TRAIN_COMBINATIONS`, :data:`HELD_OUT_COMBINATIONS`,
:func:`draw`, :func:`sample`, :func:`caption`, :data:`VOCABULARY`.
Everything is a function of a ``torch.Generator``, so the data is reproducible and no file is stored.
"""

from __future__ import annotations

import itertools
import random
from typing import NamedTuple

import torch

IMAGE_SIZE = 32
COLORS: dict[str, tuple[float, float, float]] = {
    "red": (1.0, 0.1, 0.1), "green": (0.1, 0.85, 0.1), "blue": (0.15, 0.3, 1.0),
    "yellow": (1.0, 0.9, 0.1), "purple": (0.6, 0.1, 0.9), "cyan": (0.1, 0.9, 0.9),
}
SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "cross")
SIZES: dict[str, float] = {"small": 5.0, "large": 9.0}  # radius in pixels before jitter
POSITIONS: dict[str, tuple[int, int]] = {"left": (10, 16), "right": (22, 16), "top": (16, 10), "bottom": (16, 22)}
HELD_OUT: frozenset[tuple[str, str]] = frozenset({
    ("red", "triangle"), ("green", "cross"), ("blue", "circle"),
    ("yellow", "square"), ("purple", "triangle"), ("cyan", "cross"),
})

# Words the captions and the prompt templates of the chapter use; <pad> is 0, <eos> ends every text.
VOCABULARY: tuple[str, ...] = (
    "<pad>", "<eos>", "<bos>", "a", "photo", "of", "picture", "on", "the", "at", "an", "image", "shape", "with",
    *COLORS, *SHAPES, *SIZES, *POSITIONS,
)


class Combination(NamedTuple):
    color: str
    shape: str
    size: str
    position: str

    @property
    def pair(self) -> tuple[str, str]:
        return self.color, self.shape


COMBINATIONS: tuple[Combination, ...] = tuple(Combination(*c) for c in itertools.product(COLORS, SHAPES, SIZES, POSITIONS))
TRAIN_COMBINATIONS = tuple(c for c in COMBINATIONS if c.pair not in HELD_OUT)
HELD_OUT_COMBINATIONS = tuple(c for c in COMBINATIONS if c.pair in HELD_OUT)
PAIRS: tuple[tuple[str, str], ...] = tuple(itertools.product(COLORS, SHAPES))  # the 24 zero-shot classes

_rows, _cols = torch.meshgrid(torch.arange(IMAGE_SIZE).float(), torch.arange(IMAGE_SIZE).float(), indexing="ij")


def shape_mask(shape: str, center_x: float, center_y: float, radius: float) -> torch.Tensor:
    """Boolean IMAGE_SIZE × IMAGE_SIZE mask of ``shape`` centred at (x, y) with the given radius."""
    dx, dy = _cols - center_x, _rows - center_y
    if shape == "circle":
        return dx ** 2 + dy ** 2 <= radius ** 2
    if shape == "square":
        return (dx.abs() <= radius * 0.85) & (dy.abs() <= radius * 0.85)
    if shape == "triangle":  # apex up
        return (dy <= radius * 0.8) & (dy >= -radius) & (dx.abs() <= (dy + radius) * 0.55)
    if shape == "cross":
        arm = radius * 0.3
        return ((dx.abs() <= arm) & (dy.abs() <= radius)) | ((dy.abs() <= arm) & (dx.abs() <= radius))
    raise ValueError(f"unknown shape {shape!r}; expected one of {SHAPES}")


def draw(combination: Combination, generator: torch.Generator | None = None, jitter: bool = True) -> torch.Tensor:
    """One 3 × 32 × 32 image in [0, 1] (plus a little noise) showing ``combination``."""
    shift_x, shift_y, scale, brightness = (torch.rand(4, generator=generator) if jitter
                                           else torch.tensor([0.5, 0.5, 0.5, 1.0])).tolist()
    center_x, center_y = POSITIONS[combination.position]
    mask = shape_mask(combination.shape, center_x + (shift_x - 0.5) * 4, center_y + (shift_y - 0.5) * 4,
                      SIZES[combination.size] * (0.8 + 0.4 * scale))
    image = torch.zeros(3, IMAGE_SIZE, IMAGE_SIZE)
    image[:, mask] = (torch.tensor(COLORS[combination.color]) * (0.85 + 0.15 * brightness))[:, None]
    if jitter:
        image += 0.05 * torch.randn(3, IMAGE_SIZE, IMAGE_SIZE, generator=generator)
    return image


def sample(combinations, count: int, generator: torch.Generator | None = None):
    """``count`` images drawn from ``combinations`` uniformly: (images N×3×32×32, list of Combination)."""
    combinations = tuple(combinations)
    picks = torch.randint(0, len(combinations), (count,), generator=generator).tolist()
    chosen = [combinations[i] for i in picks]
    return torch.stack([draw(c, generator) for c in chosen]), chosen


def caption(combination: Combination, drop_probability: float = 0.0, rng: random.Random | None = None) -> str:
    """``"a small red circle on the left"``; size and position are each left out with ``drop_probability``.

    Dropping attributes at training time teaches the text encoder that "a red circle" describes every red
    circle, which is the kind of short prompt zero-shot classification uses.
    """
    rng = rng or random
    where = f"on the {combination.position}" if combination.position in ("left", "right") else f"at the {combination.position}"
    size = None if drop_probability and rng.random() < drop_probability else combination.size
    if drop_probability and rng.random() < drop_probability:
        where = None
    return " ".join(word for word in ("a", size, combination.color, combination.shape, where) if word)


def parse_caption(text: str) -> dict[str, str | None]:
    """The attributes a caption names: {"color", "shape", "size", "position"} (None where absent)."""
    words = text.lower().replace(".", " ").replace(",", " ").split()
    found = {}
    for attribute, options in (("color", COLORS), ("shape", SHAPES), ("size", SIZES), ("position", POSITIONS)):
        found[attribute] = next((word for word in words if word in options), None)
    return found
