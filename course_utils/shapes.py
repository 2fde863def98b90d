"""Deterministic synthetic "shapes" dataset for the detection and segmentation chapters.

Real datasets are large, slow to download and hard to reason about.  This module draws small RGB
images containing circles, squares and triangles in a few saturated colours, together with every
label a later chapter needs: tight boxes, per-instance masks, a semantic mask and an English caption.
Because every label is computed from the same rasterised masks that paint the image, the labels are
exact, and because every scene comes from a seeded ``np.random.Generator`` the data is reproducible
on any machine without storing a single file.

Main entry points:

* :func:`make_scene` - one :class:`ShapeScene` (image + all labels).
* :class:`ShapesDataset` - a lazily generated ``torch.utils.data.Dataset`` for five tasks.
* :func:`collate_detection` - batches detection/instance items for a ``DataLoader``.
* :func:`export_yolo` - writes an ultralytics-format dataset (boxes or polygons) to disk.

Conventions (shared by every output):

* Boxes are ``xyxy`` in pixel-edge coordinates: a mask covering pixel columns ``3..7`` has
  ``x1 = 3`` and ``x2 = 8``, so ``x2 - x1`` is the width in pixels and normalised boxes lie in [0, 1].
* Shapes are drawn in list order; later shapes occlude earlier ones.  Instance masks are the
  *visible* pixels only, so they never overlap.
* Class indices are 0-based into :data:`CLASSES` in :class:`ShapeScene` and YOLO files; torchvision
  style targets (``ShapesDataset`` detection/instance) add 1 because 0 means background there.
"""

from __future__ import annotations

import json
import operator
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw
from torch.utils.data import Dataset

__all__ = [
    "BACKGROUNDS",
    "CLASSES",
    "COLORS",
    "RELATION_MARGIN",
    "SIZES",
    "TASKS",
    "ShapeScene",
    "ShapesDataset",
    "collate_detection",
    "export_yolo",
    "make_caption",
    "make_scene",
]

CLASSES: tuple[str, ...] = ("circle", "square", "triangle")

# Saturated colours roughly 90 degrees apart in hue, so neither a CNN nor CLIP can confuse them,
# and none of them is grey, so they never blend into the (grey) background.
COLORS: Mapping[str, tuple[int, int, int]] = MappingProxyType(
    {
        "red": (220, 40, 40),
        "green": (40, 180, 60),
        "blue": (40, 80, 220),
        "yellow": (235, 200, 30),
    }
)

SIZES: tuple[str, ...] = ("small", "large")
TASKS: tuple[str, ...] = ("detection", "semantic", "instance", "classification", "caption")
BACKGROUNDS: tuple[str, ...] = ("noise", "plain")

# Half-extent of a shape as a fraction of the image side.  The ranges do not overlap, so "small"
# and "large" in captions are always visually true.
_SIZE_RANGES: dict[str, tuple[float, float]] = {"small": (0.09, 0.13), "large": (0.18, 0.24)}

# A spatial relation is only put into a two-shape caption when the centres differ by at least
# this fraction of the image side; smaller offsets would make "above" a matter of opinion.
RELATION_MARGIN: float = 0.15

_MIN_IMAGE_SIZE = 32
_MAX_SHAPES = 20
# Train items and ShapesDataset items use stream 0, export_yolo's val split uses stream 1, so
# the two splits never share a scene.
_TRAIN_STREAM, _VAL_STREAM = 0, 1


# --------------------------------------------------------------------------------------------
# Validation helpers
# --------------------------------------------------------------------------------------------
def _describe(value: Any) -> str:
    return f"{value!r} ({type(value).__name__})"


def _check_int(name: str, value: Any, minimum: int) -> int:
    """Return ``value`` as int, rejecting bools/floats: ``True`` images or ``64.0`` are bugs."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int >= {minimum}, got {_describe(value)}")
    if value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value}")
    return int(value)


def _check_choice(name: str, value: Any, choices: Sequence[str]) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be one of {list(choices)}, got {_describe(value)}")
    if value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}")
    return value


def _check_subset(name: str, values: Sequence[str] | None, allowed: Sequence[str]) -> tuple[str, ...]:
    if values is None:
        return tuple(allowed)
    if isinstance(values, str) or not isinstance(values, Sequence):
        raise TypeError(f"{name} must be a sequence of names from {list(allowed)}, got {_describe(values)}")
    unknown = [v for v in values if v not in allowed]
    if unknown or not values:
        raise ValueError(f"{name} must be a non-empty subset of {list(allowed)}, got {list(values)}")
    return tuple(values)


def _check_n_shapes(n_shapes: Any) -> tuple[int, int]:
    expected = f"an int or a (min, max) pair with 1 <= min <= max <= {_MAX_SHAPES}"
    if isinstance(n_shapes, (int, np.integer)) and not isinstance(n_shapes, bool):
        n_shapes = (n_shapes, n_shapes)
    if not isinstance(n_shapes, (tuple, list)) or len(n_shapes) != 2:
        raise TypeError(f"n_shapes must be {expected}, got {_describe(n_shapes)}")
    if any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) for v in n_shapes):
        raise TypeError(f"n_shapes must be {expected}, got {n_shapes!r}")
    low, high = int(n_shapes[0]), int(n_shapes[1])
    if not 1 <= low <= high <= _MAX_SHAPES:
        raise ValueError(f"n_shapes must be {expected}, got {tuple(n_shapes)!r}")
    return low, high


def _check_fraction(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise TypeError(f"{name} must be a number in [0, 1], got {_describe(value)}")
    if not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"{name} must be a number in [0, 1], got {value}")
    return float(value)


def _as_generator(rng_or_seed: Any) -> np.random.Generator:
    if isinstance(rng_or_seed, np.random.Generator):
        return rng_or_seed
    if isinstance(rng_or_seed, bool) or not isinstance(rng_or_seed, (int, np.integer)):
        raise TypeError(
            f"rng_or_seed must be an int seed >= 0 or a numpy Generator, got {_describe(rng_or_seed)}"
        )
    return np.random.default_rng(_check_int("rng_or_seed", rng_or_seed, 0))


def _scene_rng(seed: int, index: int, stream: int = _TRAIN_STREAM) -> np.random.Generator:
    # A fixed-length key [seed, stream, index] instead of seed + index: with seed + index,
    # ShapesDataset(seed=0)[1] and ShapesDataset(seed=1)[0] would be the same image, silently
    # leaking a "train" set into a "val" set built with the next seed.
    return np.random.default_rng([seed, stream, index])


# --------------------------------------------------------------------------------------------
# Scenes
# --------------------------------------------------------------------------------------------
@dataclass
class ShapeScene:
    """One synthetic image with every label derived from the same masks.

    Attributes:
        image: ``(H, W, 3)`` uint8 RGB image.
        boxes: ``(N, 4)`` float32 ``xyxy`` pixel-edge boxes, tight around each visible mask.
        labels: ``(N,)`` int64 index into :data:`CLASSES`.
        colors: colour name of each shape (key of :data:`COLORS`).
        sizes: ``"small"`` or ``"large"`` for each shape.
        instance_masks: ``(N, H, W)`` bool visible pixels of each shape (after occlusion).
        semantic_mask: ``(H, W)`` int64, 0 = background, ``label + 1`` of the top-most shape.
        caption: English description, see :func:`make_caption`.
    """

    image: np.ndarray
    boxes: np.ndarray
    labels: np.ndarray
    colors: list[str]
    sizes: list[str]
    instance_masks: np.ndarray
    semantic_mask: np.ndarray
    caption: str

    def __len__(self) -> int:
        return len(self.labels)


@dataclass(frozen=True)
class _Shape:
    label: int
    color: str
    size: str
    cx: float
    cy: float
    radius: float


def _random_shape(rng: np.random.Generator, image_size: int, classes: Sequence[str],
                  colors: Sequence[str]) -> _Shape:
    size = SIZES[rng.integers(len(SIZES))]
    low, high = _SIZE_RANGES[size]
    radius = rng.uniform(low, high) * image_size
    # Keep the whole shape inside the image so "visible fraction" only measures occlusion.
    cx, cy = rng.uniform(radius + 1, image_size - radius - 1, size=2)
    return _Shape(
        label=CLASSES.index(classes[rng.integers(len(classes))]),
        color=colors[rng.integers(len(colors))],
        size=size,
        cx=float(cx),
        cy=float(cy),
        radius=float(radius),
    )


def _shape_vertices(shape: _Shape) -> list[tuple[float, float]]:
    """Square/triangle corners (an upright isosceles triangle filling the square's bounds)."""
    x0, y0 = shape.cx - shape.radius, shape.cy - shape.radius
    x1, y1 = shape.cx + shape.radius, shape.cy + shape.radius
    if CLASSES[shape.label] == "square":
        return [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
    return [(shape.cx, y0), (x1, y1), (x0, y1)]


def _rasterise(shape: _Shape, image_size: int) -> np.ndarray:
    # Masks are drawn without anti-aliasing and the image is painted *through* them, so mask and
    # pixels agree exactly.
    canvas = Image.new("1", (image_size, image_size), 0)
    draw = ImageDraw.Draw(canvas)
    if CLASSES[shape.label] == "circle":
        r = shape.radius
        draw.ellipse([shape.cx - r, shape.cy - r, shape.cx + r, shape.cy + r], fill=1)
    else:
        draw.polygon(_shape_vertices(shape), fill=1)
    return np.array(canvas, dtype=bool)


def _stays_visible(full_masks: list[np.ndarray], new_mask: np.ndarray, min_visible: float) -> bool:
    """Would every shape (new one on top) keep >= min_visible of its area and >= 1 pixel?"""
    if not new_mask.any():
        return False
    cover = new_mask.copy()
    for mask in reversed(full_masks):
        visible = np.count_nonzero(mask & ~cover)
        if visible == 0 or visible < min_visible * np.count_nonzero(mask):
            return False
        cover |= mask
    return True


def _place_shapes(rng: np.random.Generator, n_target: int, image_size: int, classes: Sequence[str],
                  colors: Sequence[str], min_visible: float,
                  max_attempts: int) -> tuple[list[_Shape], list[np.ndarray]]:
    shapes: list[_Shape] = []
    masks: list[np.ndarray] = []
    for _ in range(n_target):
        for _attempt in range(max_attempts):
            shape = _random_shape(rng, image_size, classes, colors)
            mask = _rasterise(shape, image_size)
            if _stays_visible(masks, mask, min_visible):
                shapes.append(shape)
                masks.append(mask)
                break
    return shapes, masks


def _visible_masks(full_masks: list[np.ndarray]) -> np.ndarray:
    visible = np.stack(full_masks).copy()
    cover = np.zeros_like(full_masks[0])
    for i in range(len(full_masks) - 1, -1, -1):
        visible[i] &= ~cover
        cover |= full_masks[i]
    return visible


def _mask_box(mask: np.ndarray) -> np.ndarray:
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    return np.array([cols[0], rows[0], cols[-1] + 1, rows[-1] + 1], dtype=np.float32)


def _background(rng: np.random.Generator, image_size: int, kind: str) -> np.ndarray:
    # Grey only (R == G == B) so the background never carries a hue a shape could be mistaken for.
    level = rng.uniform(70, 140)
    grey = np.full((image_size, image_size), level)
    if kind == "noise":
        grey = grey + rng.normal(0.0, 12.0, size=grey.shape)
    grey = np.clip(np.rint(grey), 0, 255).astype(np.uint8)
    return np.repeat(grey[:, :, None], 3, axis=2)


def _phrase(label: int, color: str, size: str) -> str:
    return f"a {size} {color} {CLASSES[label]}"


def make_caption(labels: Sequence[int], colors: Sequence[str], sizes: Sequence[str],
                 boxes: np.ndarray, image_size: int) -> str:
    """Describe shapes in English, e.g. ``"a large red circle and a small blue square"``.

    Rule for exactly two shapes: with ``d`` the difference of their box centres, if the larger
    component of ``d`` is at least ``RELATION_MARGIN * image_size`` the caption becomes
    ``"<upper> above <lower>"`` (vertical offset dominates) or ``"<left> to the left of <right>"``
    (horizontal offset dominates, ties go to vertical).  The subject is always the upper/left shape,
    so only the words "above" and "to the left of" ever appear.  Otherwise shapes are listed in
    drawing order: ``"a, b and c"``.
    """
    phrases = [_phrase(lab, col, size) for lab, col, size in zip(labels, colors, sizes)]
    if len(phrases) == 2:
        centres = (boxes[:, :2] + boxes[:, 2:]) / 2
        dx, dy = centres[1] - centres[0]
        margin = RELATION_MARGIN * image_size
        if abs(dy) >= abs(dx) and abs(dy) >= margin:
            upper, lower = (0, 1) if dy > 0 else (1, 0)
            return f"{phrases[upper]} above {phrases[lower]}"
        if abs(dx) >= margin:
            left, right = (0, 1) if dx > 0 else (1, 0)
            return f"{phrases[left]} to the left of {phrases[right]}"
    if len(phrases) == 1:
        return phrases[0]
    return ", ".join(phrases[:-1]) + " and " + phrases[-1]


def make_scene(
    rng_or_seed: int | np.random.Generator,
    image_size: int = 64,
    n_shapes: int | tuple[int, int] = (1, 3),
    background: str = "noise",
    min_visible_fraction: float = 0.5,
    classes: Sequence[str] | None = None,
    colors: Sequence[str] | None = None,
    max_attempts: int = 100,
) -> ShapeScene:
    """Generate one random scene; the same seed always gives the same scene.

    Args:
        rng_or_seed: a non-negative int seed or an ``np.random.Generator`` (which is advanced).
        image_size: side of the square image in pixels, >= 32.
        n_shapes: exact count or inclusive ``(min, max)`` range.  The count is drawn from the
            range; in very crowded settings fewer shapes (but never fewer than ``min``) may fit.
        background: ``"noise"`` (grey with pixel noise) or ``"plain"`` (flat grey).
        min_visible_fraction: every listed shape keeps at least this fraction of its own area
            visible after occlusion; candidates violating it are re-drawn.
        classes: subset of :data:`CLASSES` to draw from (labels still index :data:`CLASSES`).
        colors: subset of :data:`COLORS` names to draw from.
        max_attempts: random re-draws allowed per shape before giving up on it.

    Raises:
        RuntimeError: if fewer than ``min`` shapes could be placed (lower the count or fraction).
    """
    rng = _as_generator(rng_or_seed)
    image_size = _check_int("image_size", image_size, _MIN_IMAGE_SIZE)
    low, high = _check_n_shapes(n_shapes)
    background = _check_choice("background", background, BACKGROUNDS)
    min_visible = _check_fraction("min_visible_fraction", min_visible_fraction)
    class_names = _check_subset("classes", classes, CLASSES)
    color_names = _check_subset("colors", colors, tuple(COLORS))
    max_attempts = _check_int("max_attempts", max_attempts, 1)

    n_target = int(rng.integers(low, high + 1))
    shapes, full_masks = _place_shapes(rng, n_target, image_size, class_names, color_names,
                                       min_visible, max_attempts)
    if len(shapes) < low:
        raise RuntimeError(
            f"could only place {len(shapes)} of at least {low} shapes in a {image_size}px image "
            f"with min_visible_fraction={min_visible}; lower n_shapes or min_visible_fraction"
        )
    return _assemble_scene(rng, shapes, full_masks, image_size, background)


def _assemble_scene(rng: np.random.Generator, shapes: list[_Shape], full_masks: list[np.ndarray],
                    image_size: int, background: str) -> ShapeScene:
    image = _background(rng, image_size, background)
    visible = _visible_masks(full_masks)
    semantic = np.zeros((image_size, image_size), dtype=np.int64)
    for shape, mask in zip(shapes, visible):
        image[mask] = COLORS[shape.color]
        semantic[mask] = shape.label + 1
    labels = np.array([s.label for s in shapes], dtype=np.int64)
    colors = [s.color for s in shapes]
    sizes = [s.size for s in shapes]
    boxes = np.stack([_mask_box(m) for m in visible]).astype(np.float32)
    return ShapeScene(
        image=image,
        boxes=boxes,
        labels=labels,
        colors=colors,
        sizes=sizes,
        instance_masks=visible,
        semantic_mask=semantic,
        caption=make_caption(labels, colors, sizes, boxes, image_size),
    )


# --------------------------------------------------------------------------------------------
# PyTorch dataset
# --------------------------------------------------------------------------------------------
def _image_to_tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(image).permute(2, 0, 1).float().div_(255.0)


class ShapesDataset(Dataset):
    """Lazily generated shapes scenes; item ``i`` is identical on every call and machine.

    Item ``i`` is built from the key ``[seed, 0, i]``, so datasets with different seeds never share
    images (a plain ``seed + i`` would make ``seed=1`` a shifted copy of ``seed=0``).

    ``__getitem__`` returns ``(image, target)`` with ``image`` a float32 ``(3, H, W)`` tensor in
    [0, 1] and ``target`` depending on ``task``:

    * ``"detection"``: ``{"boxes": float32 (N, 4) xyxy, "labels": int64 (N,)}`` with labels = class
      index + 1 (torchvision convention, 0 is background).
    * ``"instance"``: as detection plus ``"masks"``: uint8 ``(N, H, W)`` (Mask R-CNN format).
    * ``"semantic"``: int64 ``(H, W)`` tensor, 0 = background, class index + 1 otherwise.
    * ``"classification"``: int class index into :data:`CLASSES` (scenes hold exactly one shape).
    * ``"caption"``: the caption string.

    ``transform`` is called as ``transform(image)`` on the image tensor only, so use it for
    photometric changes (normalisation, colour jitter); geometric augmentation would invalidate
    the targets.  Extra keyword arguments are passed to :func:`make_scene`.
    """

    def __init__(self, n_images: int, image_size: int = 64, seed: int = 0, task: str = "detection",
                 transform: Any = None, **scene_kwargs: Any) -> None:
        self.n_images = _check_int("n_images", n_images, 1)
        self.image_size = _check_int("image_size", image_size, _MIN_IMAGE_SIZE)
        self.seed = _check_int("seed", seed, 0)
        self.task = _check_choice("task", task, TASKS)
        if transform is not None and not callable(transform):
            raise TypeError(f"transform must be callable or None, got {_describe(transform)}")
        self.transform = transform
        if self.task == "classification":
            if scene_kwargs.get("n_shapes", 1) not in (1, (1, 1), [1, 1]):
                raise ValueError(
                    f"task='classification' needs one shape per image (n_shapes=1), "
                    f"got n_shapes={scene_kwargs['n_shapes']!r}"
                )
            scene_kwargs["n_shapes"] = 1
        self.scene_kwargs = scene_kwargs
        # Generate item 0 now so a bad keyword fails at construction, not inside a DataLoader worker.
        self.scene(0)

    def __len__(self) -> int:
        return self.n_images

    def _check_index(self, index: Any) -> int:
        index = operator.index(index)
        if not -self.n_images <= index < self.n_images:
            raise IndexError(f"index must be in [-{self.n_images}, {self.n_images}), got {index}")
        return index % self.n_images

    def scene(self, index: int) -> ShapeScene:
        """The full :class:`ShapeScene` behind item ``index`` (for plotting and debugging)."""
        index = self._check_index(index)
        return make_scene(_scene_rng(self.seed, index), image_size=self.image_size, **self.scene_kwargs)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, Any]:
        scene = self.scene(index)
        image = _image_to_tensor(scene.image)
        if self.transform is not None:
            image = self.transform(image)
        return image, self._target(scene)

    def _target(self, scene: ShapeScene) -> Any:
        if self.task == "semantic":
            return torch.from_numpy(scene.semantic_mask)
        if self.task == "classification":
            return int(scene.labels[0])
        if self.task == "caption":
            return scene.caption
        target = {
            "boxes": torch.from_numpy(scene.boxes),
            "labels": torch.from_numpy(scene.labels + 1),
        }
        if self.task == "instance":
            target["masks"] = torch.from_numpy(scene.instance_masks.astype(np.uint8))
        return target


def collate_detection(batch: Sequence[tuple[torch.Tensor, Any]]) -> tuple[torch.Tensor, list[Any]]:
    """Stack images into ``(B, C, H, W)`` and keep targets as a list (box counts differ per image)."""
    if len(batch) == 0:
        raise ValueError("batch must contain at least one (image, target) pair, got an empty batch")
    images, targets = zip(*batch)
    shapes = {tuple(img.shape) for img in images}
    if len(shapes) != 1:
        raise ValueError(f"all images in a batch must have the same shape, got {sorted(shapes)}")
    return torch.stack(images), list(targets)


# --------------------------------------------------------------------------------------------
# YOLO export
# --------------------------------------------------------------------------------------------
def _outline_edges(mask: np.ndarray) -> dict[tuple[int, int], list[tuple[int, int]]]:
    """Directed pixel-edge boundary segments, oriented so every loop runs the same way round."""
    padded = np.pad(mask, 1)
    inside = padded[1:-1, 1:-1]
    edges: dict[tuple[int, int], list[tuple[int, int]]] = {}
    # (neighbour offset, start corner, end corner) in (x, y) relative to the pixel's top-left.
    sides = [((-1, 0), (1, 0), (0, 0)), ((1, 0), (0, 1), (1, 1)),
             ((0, -1), (0, 0), (0, 1)), ((0, 1), (1, 1), (1, 0))]
    h, w = mask.shape
    for (dr, dc), (sx, sy), (ex, ey) in sides:
        outside = ~padded[1 + dr:1 + dr + h, 1 + dc:1 + dc + w]
        for r, c in zip(*np.nonzero(inside & outside)):
            edges.setdefault((c + sx, r + sy), []).append((c + ex, r + ey))
    return edges


def _trace_loops(edges: dict[tuple[int, int], list[tuple[int, int]]]) -> list[list[tuple[int, int]]]:
    loops = []
    while edges:
        # Start on an ordinary corner: starting on a pinch corner could pair the wrong edges.
        start = next((p for p, out in edges.items() if len(out) == 1), next(iter(edges)))
        loop, prev, point = [start], None, start
        while True:
            options = edges[point]
            nxt = options[0]
            if len(options) > 1 and prev is not None:
                # Two pixels touching only at a corner: turn the same way as the loop's
                # orientation so 4-connected blobs stay separate polygons.
                hx, hy = point[0] - prev[0], point[1] - prev[1]
                nxt = min(options, key=lambda q: hx * (q[1] - point[1]) - hy * (q[0] - point[0]))
            options.remove(nxt)
            if not options:
                del edges[point]
            prev, point = point, nxt
            if point == start:
                break
            loop.append(point)
        loops.append(loop)
    return loops


def _signed_area(loop: list[tuple[int, int]]) -> float:
    xs = np.array([p[0] for p in loop], dtype=float)
    ys = np.array([p[1] for p in loop], dtype=float)
    return 0.5 * float(np.dot(xs, np.roll(ys, -1)) - np.dot(np.roll(xs, -1), ys))


def _drop_collinear(loop: list[tuple[int, int]]) -> list[tuple[int, int]]:
    pts = np.array(loop)
    incoming = pts - np.roll(pts, 1, axis=0)
    outgoing = np.roll(pts, -1, axis=0) - pts
    cross = incoming[:, 0] * outgoing[:, 1] - incoming[:, 1] * outgoing[:, 0]
    return [tuple(int(v) for v in p) for p in pts[cross != 0]]


def _mask_outline(mask: np.ndarray) -> list[tuple[int, int]]:
    """Outer outline (pixel corners) of the largest 4-connected blob of ``mask``.

    The polygon follows pixel edges, so filling it reproduces the blob's pixels exactly; holes
    are filled (YOLO allows one polygon per object, and a shape covering the hole is a separate
    object lying on top).  Only the largest blob is kept when occlusion splits a shape.
    """
    loops = _trace_loops(_outline_edges(mask))
    # Outer loops have negative signed area with this edge orientation, holes positive.
    outer = min(loops, key=_signed_area)
    return _drop_collinear(outer)


def _yolo_lines(scene: ShapeScene, segments: bool) -> list[str]:
    size = scene.image.shape[0]
    lines = []
    for label, box, mask in zip(scene.labels, scene.boxes, scene.instance_masks):
        if segments:
            coords = [v / size for point in _mask_outline(mask) for v in point]
        else:
            x1, y1, x2, y2 = (float(v) / size for v in box)
            coords = [(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1]
        lines.append(f"{int(label)} " + " ".join(f"{v:.6f}" for v in coords))
    return lines


def _write_yaml(root: Path) -> Path:
    # json.dumps gives a double-quoted string, which is valid YAML for any path (spaces, colons).
    names = "\n".join(f"  {i}: {name}" for i, name in enumerate(CLASSES))
    text = (
        "# Synthetic shapes dataset written by course_utils.shapes.export_yolo\n"
        f"path: {json.dumps(str(root))}\n"
        "train: images/train\n"
        "val: images/val\n"
        f"names:\n{names}\n"
    )
    yaml_path = root / "data.yaml"
    yaml_path.write_text(text, encoding="utf-8")
    return yaml_path


def _export_split(root: Path, split: str, n_images: int, stream: int, image_size: int, seed: int,
                  segments: bool, scene_kwargs: dict[str, Any]) -> None:
    image_dir, label_dir = root / "images" / split, root / "labels" / split
    # Remove only what this function owns, plus ultralytics' label cache, which would otherwise
    # keep serving the old labels after a re-export.
    for stale in (image_dir, label_dir):
        shutil.rmtree(stale, ignore_errors=True)
    (root / "labels" / f"{split}.cache").unlink(missing_ok=True)
    image_dir.mkdir(parents=True)
    label_dir.mkdir(parents=True)
    for i in range(n_images):
        scene = make_scene(_scene_rng(seed, i, stream), image_size=image_size, **scene_kwargs)
        Image.fromarray(scene.image).save(image_dir / f"{i:06d}.png")
        (label_dir / f"{i:06d}.txt").write_text("\n".join(_yolo_lines(scene, segments)) + "\n")


def export_yolo(root: str | Path, n_train: int, n_val: int, image_size: int = 64, seed: int = 0,
                segments: bool = False, **scene_kwargs: Any) -> Path:
    """Write an ultralytics-format dataset and return the path of its ``data.yaml``.

    Layout: ``root/images/{train,val}/NNNNNN.png``, ``root/labels/{train,val}/NNNNNN.txt`` and
    ``root/data.yaml``.  Label lines are ``cls cx cy w h`` (normalised, ``cls`` 0-based into
    :data:`CLASSES`), or with ``segments=True`` ``cls x1 y1 x2 y2 ...``: the pixel-exact outline of
    the visible mask (see :func:`_mask_outline`), chosen over geometric vertices because it stays
    correct when occlusion cuts a shape.  Train image ``i`` equals ``ShapesDataset(seed=seed)``
    item ``i``; the val split uses a separate random stream.  Re-exporting to the same root replaces
    the previous splits.  Extra keyword arguments go to :func:`make_scene`.
    """
    if not isinstance(root, (str, Path)):
        raise TypeError(f"root must be a str or pathlib.Path, got {_describe(root)}")
    n_train = _check_int("n_train", n_train, 1)
    n_val = _check_int("n_val", n_val, 1)
    image_size = _check_int("image_size", image_size, _MIN_IMAGE_SIZE)
    seed = _check_int("seed", seed, 0)
    if not isinstance(segments, bool):
        raise TypeError(f"segments must be a bool, got {_describe(segments)}")
    root = Path(root).expanduser().resolve()
    make_scene(_scene_rng(seed, 0), image_size=image_size, **scene_kwargs)  # fail before touching disk
    for split, count, stream in (("train", n_train, _TRAIN_STREAM), ("val", n_val, _VAL_STREAM)):
        _export_split(root, split, count, stream, image_size, seed, segments, scene_kwargs)
    return _write_yaml(root)
