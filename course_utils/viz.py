"""Plotting helpers: image grids from any common layout, training curves, boxes and masks.

Images may be CHW or HWC, uint8 or float, gray or RGB, NumPy or torch; :func:`to_hwc_display`
turns any of them into something ``plt.imshow`` shows correctly, and says what it got when it can't.
"""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.ticker import MaxNLocator
from torchvision.utils import draw_bounding_boxes, draw_segmentation_masks


def to_hwc_display(image) -> np.ndarray:
    """Any single image → H×W (gray) or H×W×3 array that ``imshow`` displays as intended.

    Accepts (H, W), (1|3, H, W) or (H, W, 1|3); uint8 in [0, 255] or float. Floats outside [0, 1]
    (e.g. normalised tensors) are rescaled to [0, 1] for display only.
    """
    array = image.detach().cpu().numpy() if isinstance(image, torch.Tensor) else np.asarray(image)
    if array.ndim == 3 and array.shape[0] in (1, 3) and array.shape[-1] not in (1, 3):
        array = np.transpose(array, (1, 2, 0))
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[-1] != 3):
        raise ValueError(f"expected one image shaped (H, W), (C, H, W) or (H, W, C) with C in (1, 3), "
                         f"got shape {array.shape}")
    if array.dtype == np.uint8:
        return array
    if array.dtype == bool:
        return array.astype(np.float32)
    array = array.astype(np.float32)
    low, high = float(array.min()), float(array.max())
    if low < 0.0 or high > 1.0:
        array = (array - low) / max(high - low, 1e-12)
    return array


def show_images(images, titles=None, ncols: int = 8, size: float = 1.6, suptitle: str | None = None,
                cmap: str = "gray"):
    """A grid of images (a batch tensor N×C×H×W, a list, or an N×H×W array) with optional titles."""
    if isinstance(images, torch.Tensor) and images.ndim == 4 or isinstance(images, np.ndarray) and images.ndim in (3, 4) and images.shape[0] > 3:
        images = list(images)
    elif not isinstance(images, (list, tuple)):
        images = [images]
    if len(images) == 0:
        raise ValueError("show_images needs at least one image")
    if titles is not None and len(titles) != len(images):
        raise ValueError(f"got {len(images)} images but {len(titles)} titles")
    ncols = min(ncols, len(images))
    nrows = math.ceil(len(images) / ncols)
    title_room = 0.35 if titles is not None else 0.0  # per row, so titles never overlap images
    fig, axes = plt.subplots(nrows, ncols, squeeze=False,
                             figsize=(size * ncols, (size + title_room) * nrows + (0.4 if suptitle else 0)))
    for ax in axes.flat:
        ax.axis("off")
    for index, image in enumerate(images):
        ax = axes.flat[index]
        display = to_hwc_display(image)
        ax.imshow(display, cmap=cmap if display.ndim == 2 else None,
                  vmin=0 if display.ndim == 2 and display.dtype != np.uint8 else None,
                  vmax=1 if display.ndim == 2 and display.dtype != np.uint8 else None)
        if titles is not None:
            ax.set_title(str(titles[index]), fontsize=8)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def plot_history(history: dict, metrics=("loss", "accuracy"), title: str = "Training curves"):
    """Train/val curves per epoch for each metric in ``metrics`` (keys ``train_<m>`` / ``val_<m>``)."""
    present = [m for m in metrics if f"train_{m}" in history or f"val_{m}" in history]
    if not present:
        raise ValueError(f"history has none of {['train_' + m for m in metrics]}; keys: {sorted(history)}")
    fig, axes = plt.subplots(1, len(present), figsize=(5 * len(present), 3.4), squeeze=False)
    for ax, metric in zip(axes.flat, present):
        for split in ("train", "val"):
            values = history.get(f"{split}_{metric}")
            if values:
                epochs = history.get("epoch") or list(range(1, len(values) + 1))
                ax.plot(epochs, values, marker="o", label=split)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(metric)
        ax.set_title(f"{metric} per epoch")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def _as_uint8_chw(image) -> torch.Tensor:
    display = to_hwc_display(image)
    if display.dtype != np.uint8:
        display = (np.clip(display, 0, 1) * 255).round().astype(np.uint8)
    if display.ndim == 2:
        display = np.repeat(display[..., None], 3, axis=-1)
    return torch.from_numpy(np.ascontiguousarray(display)).permute(2, 0, 1)


def draw_boxes(image, boxes, labels=None, colors="yellow", width: int = 2) -> torch.Tensor:
    """Boxes (N×4, xyxy pixels) drawn onto ``image`` with torchvision; returns uint8 3×H×W."""
    boxes = torch.as_tensor(boxes, dtype=torch.float32)
    if boxes.ndim != 2 or boxes.shape[-1] != 4:
        raise ValueError(f"boxes must be (N, 4) xyxy, got shape {tuple(boxes.shape)}")
    if labels is not None and len(labels) != len(boxes):
        raise ValueError(f"got {len(boxes)} boxes but {len(labels)} labels")
    return draw_bounding_boxes(_as_uint8_chw(image), boxes, labels=labels, colors=colors, width=width)


def draw_masks(image, masks, alpha: float = 0.5, colors=None) -> torch.Tensor:
    """Boolean masks (N×H×W, or one H×W) overlaid on ``image``; returns uint8 3×H×W."""
    masks = torch.as_tensor(np.asarray(masks)).bool()
    if masks.ndim == 2:
        masks = masks[None]
    canvas = _as_uint8_chw(image)
    if masks.ndim != 3 or masks.shape[-2:] != canvas.shape[-2:]:
        raise ValueError(f"masks must be (N, H, W) matching the image {tuple(canvas.shape[-2:])}, "
                         f"got {tuple(masks.shape)}")
    return draw_segmentation_masks(canvas, masks, alpha=alpha, colors=colors)


def confusion_matrix(predictions, targets, num_classes: int) -> torch.Tensor:
    """Counts C×C with rows = true class, columns = predicted class."""
    predictions, targets = torch.as_tensor(predictions).long(), torch.as_tensor(targets).long()
    if predictions.shape != targets.shape or predictions.ndim != 1:
        raise ValueError(f"predictions and targets must be equal 1-D shapes, got {tuple(predictions.shape)} "
                         f"and {tuple(targets.shape)}")
    flat = targets * num_classes + predictions
    return torch.bincount(flat, minlength=num_classes**2).reshape(num_classes, num_classes)


def plot_confusion_matrix(matrix, class_names, title: str = "Confusion matrix (rows: true class)"):
    matrix = np.asarray(matrix)
    fig, ax = plt.subplots(figsize=(0.55 * len(class_names) + 2, 0.55 * len(class_names) + 1.5))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(class_names)), class_names, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(class_names)), class_names, fontsize=8)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    threshold = matrix.max() / 2
    for (row, col), count in np.ndenumerate(matrix):
        ax.text(col, row, int(count), ha="center", va="center", fontsize=7,
                color="white" if count > threshold else "black")
    ax.set_title(title)
    fig.tight_layout()
    return fig


# --- Figure hygiene: every figure says what it shows --------------------------------------------------------

FIGURE_PROBLEMS: list[str] = []  # filled while figures are drawn (see watch_figures); read by the last cell


def _numeric(text: str) -> bool:
    try:
        float(text.replace("−", "-").replace("%", "").replace(",", ""))
        return True
    except ValueError:
        return False


def _shown_tick_labels(axis) -> list[str]:
    return [t.get_text() for t in axis.get_ticklabels() if t.get_visible() and t.get_text().strip()]


def figure_problems(fig) -> list[str]:
    """What a drawn figure lacks: a title for each panel with axes (or one for the figure), and a label on every
    axis that shows numbers. Panels without axes (images with ``axis("off")``), colour bars, axes whose tick
    labels are category names, and twins of a titled panel are exempt. Call it after the figure was drawn."""
    problems = []
    suptitle = fig._suptitle.get_text().strip() if fig._suptitle is not None else ""
    titled = {ax for ax in fig.axes if any(ax.get_title(loc).strip() for loc in ("center", "left", "right"))}
    labels = [text for ax in fig.axes for text in (ax.get_xlabel(), ax.get_ylabel()) if text.strip()]
    figure_name = suptitle or next((ax.get_title() for ax in fig.axes if ax.get_title().strip()), "") or (
        f"untitled figure (axis labels {labels[:2]})" if labels else f"untitled figure of {len(fig.axes)} panels")
    for index, ax in enumerate(fig.axes):
        if not (ax.axison and ax.get_visible()) or hasattr(ax, "_colorbar") or ax.get_label() == "<colorbar>":
            continue
        name = next((ax.get_title(loc) for loc in ("center", "left", "right") if ax.get_title(loc).strip()),
                    f"panel {index}")
        twins = set(ax.get_shared_x_axes().get_siblings(ax)) | set(ax.get_shared_y_axes().get_siblings(ax))
        if not (ax in titled or suptitle or (twins - {ax}) & titled):
            problems.append(f"{figure_name!r}: panel {index} has no title (and the figure no suptitle)")
        for letter, axis, label in (("x", ax.xaxis, ax.get_xlabel()), ("y", ax.yaxis, ax.get_ylabel())):
            ticks = _shown_tick_labels(axis)
            if ticks and all(_numeric(t) for t in ticks) and not label.strip():
                problems.append(f"{figure_name!r}, {name!r}: the {letter} axis shows numbers but has no label")
    return problems


def watch_figures() -> None:
    """Check every figure as it is rendered (inline display or savefig) and remember what it lacks in
    :data:`FIGURE_PROBLEMS`; :func:`course_utils.results.record_results` reports them in fast mode."""
    from matplotlib.backend_bases import FigureCanvasBase

    if getattr(FigureCanvasBase.print_figure, "_course_watched", False):
        return
    original = FigureCanvasBase.print_figure

    def print_figure(self, *args, **kwargs):
        result = original(self, *args, **kwargs)
        for problem in figure_problems(self.figure):
            if problem not in FIGURE_PROBLEMS:
                FIGURE_PROBLEMS.append(problem)
        return result

    print_figure._course_watched = True
    FigureCanvasBase.print_figure = print_figure
