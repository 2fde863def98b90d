"""Block diagrams drawn with matplotlib: a pipeline is boxes at grid positions joined by labelled arrows.

The chapters describe architectures and training loops (latent diffusion, DINO's teacher and student,
DDP's all-reduce, DETR) as a *spec* in a notebook cell, and :func:`flowchart` draws it, so a student can
edit the picture the same way as the code::

    flowchart({"x": (0, 0, "image"), "enc": (1, 0, "encoder")}, [("x", "enc", "pixels")])

Coordinates are in grid units (one unit ≈ one box width plus a gap); ``y`` grows upwards.
"""

from __future__ import annotations

from dataclasses import dataclass

import matplotlib.pyplot as plt
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

BOX_WIDTH = 0.8
BOX_HEIGHT = 0.5


@dataclass(frozen=True)
class Box:
    x: float
    y: float
    label: str
    color: str = "#dbe9f6"
    width: float = BOX_WIDTH
    height: float = BOX_HEIGHT


def _as_box(spec) -> Box:
    if isinstance(spec, Box):
        return spec
    if isinstance(spec, dict):
        return Box(**spec)
    if isinstance(spec, (tuple, list)) and 3 <= len(spec) <= 4:
        return Box(*spec)
    raise TypeError(f"a box is Box(x, y, label[, color]), a dict of those fields or such a tuple; got {spec!r}")


def _edge_point(box: Box, toward: tuple[float, float]) -> tuple[float, float]:
    """Where the segment from the box's centre toward ``toward`` leaves the box's rectangle."""
    dx, dy = toward[0] - box.x, toward[1] - box.y
    if dx == 0 and dy == 0:
        return box.x, box.y
    # The smaller scale reaches a side first.
    scale_x = (box.width / 2) / abs(dx) if dx else float("inf")
    scale_y = (box.height / 2) / abs(dy) if dy else float("inf")
    scale = min(scale_x, scale_y)
    return box.x + dx * scale, box.y + dy * scale


def flowchart(boxes: dict, arrows=(), ax=None, title: str | None = None, fontsize: float = 9,
              curved: dict | None = None):
    """Draw named boxes and the arrows between them; returns the axes.

    boxes:  ``{name: (x, y, label[, color])}`` (or :class:`Box` / dicts with those fields; ``width`` and
            ``height`` may be given in a dict or Box to widen one box).
    arrows: ``(source, target)`` or ``(source, target, label)`` or ``(source, target, label, style)``
            where style is a matplotlib linestyle ("-" or "--" for a path without gradient, say).
    curved: ``{(source, target): rad}`` bends that arrow (positive rad curves to the left), so a loop
            back to an earlier box does not cross the boxes between them.
    """
    placed = {name: _as_box(spec) for name, spec in boxes.items()}
    if ax is None:
        xs = [b.x for b in placed.values()] or [0]
        ys = [b.y for b in placed.values()] or [0]
        width = max(3.0, 1.6 * (max(xs) - min(xs) + 1))
        height = max(1.6, 1.3 * (max(ys) - min(ys) + 1))
        _, ax = plt.subplots(figsize=(width, height))
    for box in placed.values():
        ax.add_patch(FancyBboxPatch((box.x - box.width / 2, box.y - box.height / 2), box.width, box.height,
                                    boxstyle="round,pad=0.02,rounding_size=0.06", facecolor=box.color,
                                    edgecolor="#333333", linewidth=1.0))
        ax.text(box.x, box.y, box.label, ha="center", va="center", fontsize=fontsize, wrap=True)
    curved = curved or {}
    for arrow in arrows:
        if not 2 <= len(arrow) <= 4:
            raise ValueError(f"an arrow is (source, target[, label[, linestyle]]); got {arrow!r}")
        source, target = arrow[0], arrow[1]
        label = arrow[2] if len(arrow) > 2 else None
        style = arrow[3] if len(arrow) > 3 else "-"
        missing = [name for name in (source, target) if name not in placed]
        if missing:
            raise KeyError(f"arrow {source!r} → {target!r} names boxes that were not given: {missing}")
        start_box, end_box = placed[source], placed[target]
        start = _edge_point(start_box, (end_box.x, end_box.y))
        end = _edge_point(end_box, (start_box.x, start_box.y))
        rad = curved.get((source, target), 0.0)
        ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=12, linewidth=1.2,
                                     linestyle=style, color="#333333", connectionstyle=f"arc3,rad={rad}"))
        if label:
            # Labels sit beside the arrow's midpoint, pushed off the line toward the bend's side.
            mid_x, mid_y = (start[0] + end[0]) / 2, (start[1] + end[1]) / 2
            normal_x, normal_y = -(end[1] - start[1]), end[0] - start[0]
            norm = max((normal_x**2 + normal_y**2) ** 0.5, 1e-9)
            offset = 0.12 + abs(rad) * 0.5 * norm
            sign = -1.0 if rad < 0 else 1.0
            ax.text(mid_x + sign * offset * normal_x / norm, mid_y + sign * offset * normal_y / norm, label,
                    ha="center", va="center", fontsize=fontsize - 1, color="#1f4e79",
                    bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 1})
    xs = [b.x for b in placed.values()]
    ys = [b.y for b in placed.values()]
    if xs:
        ax.set_xlim(min(xs) - 0.7, max(xs) + 0.7)
        ax.set_ylim(min(ys) - 0.6, max(ys) + 0.6)
    ax.set_aspect("equal")
    ax.axis("off")
    if title:
        ax.set_title(title)
    return ax
