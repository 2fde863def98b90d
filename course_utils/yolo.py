"""Ultralytics YOLO models trained on course data, kept as ordinary PyTorch checkpoints.

Chapters 03 (detection), 04 (segmentation) and 08 (deployment) train YOLOv8 from its yaml on the
generated shapes data. Ultralytics saves whole pickled models, which ``torch.load(weights_only=True)``
refuses; the course instead keeps the trained network's ``state_dict`` in its own checkpoint format
(see :func:`course_utils.train.train_or_load`) and wraps the network back into an ``ultralytics.YOLO``
object for ``val``/``predict``/``export``.

* :func:`quiet` - only Ultralytics' warnings, and torch's thread count left alone (called below).
* :func:`train_arguments` - offline- and CPU-friendly ``model.train`` arguments (no plots, no workers).
* :func:`device_argument` - a torch device as Ultralytics spells it (``"cpu"``, ``0``, ``"mps"``).
* :func:`train_into` - train from a yaml with Ultralytics and copy the weights into a given network.
* :func:`wrap` - an ``ultralytics.YOLO`` around an existing network, with class names.
* :func:`read_history` - the per-epoch losses from a run's ``results.csv``.
* :func:`validated_epochs` / :func:`measured_history` - which epochs were validated; the rest's ``val_`` zeros
  (Ultralytics writes 0 when ``val=False`` skips a validation) become NaN, so they are never plotted.
* :func:`plot_losses` - training curves plus the validation points that were actually measured.
* :class:`ShapesYOLOv8n` - chapter 03's detector class (YOLOv8n with ``nc`` classes), for loading its checkpoint.
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

_QUIET_DEFAULTS = {
    "workers": 0,  # data loading in the main process: notebooks and 2-core machines
    "plots": False,  # plotting would download a font on first use
    "verbose": False,
    "exist_ok": True,
    "seed": 0,
    "deterministic": True,
    "amp": False,  # its AMP self-check downloads yolo weights; CPU training does not use AMP anyway
}


def quiet() -> None:
    """Show only Ultralytics' warnings, and stop it from lowering torch's CPU thread count.

    Its per-batch bars and banners would flood a notebook. And on a CPU, every ``train``/``val``/
    ``predict`` call sets torch to (CPU cores − 1) threads: 1 on a 2-core laptop, which halves the speed
    of everything that runs afterwards; we make it keep the thread count the course chose.
    """
    from ultralytics.utils import LOGGER, torch_utils

    LOGGER.setLevel(logging.WARNING)
    torch_utils.NUM_THREADS = torch.get_num_threads()


def device_argument(device: torch.device | str) -> int | str:
    """``torch.device`` → the ``device=`` value Ultralytics expects."""
    device = torch.device(device)
    if device.type == "cuda":
        return device.index or 0
    if device.type in ("cpu", "mps"):
        return device.type
    raise ValueError(f"Ultralytics runs on cpu, cuda or mps; got device {device}")


def train_arguments(data_yaml: str | Path, project: str | Path, name: str, *, device="cpu",
                    **overrides: Any) -> dict[str, Any]:
    """Keyword arguments for ``YOLO.train``: the course's quiet defaults, then ``overrides``."""
    data_yaml = Path(data_yaml)
    if not data_yaml.is_file():
        raise FileNotFoundError(f"no dataset yaml at {data_yaml}; write one with course_utils.shapes.export_yolo")
    return {"data": str(data_yaml), "project": str(Path(project).resolve()), "name": name,
            "device": device_argument(device), **_QUIET_DEFAULTS, **overrides}


def read_history(run_dir: str | Path) -> dict[str, list[float]]:
    """Per-epoch columns of Ultralytics' ``results.csv`` as lists, named ``train_box_loss`` etc.

    ``train/box_loss`` becomes ``train_box_loss`` and ``metrics/mAP50(B)`` becomes ``val_mAP50(B)``, so
    :func:`course_utils.viz.plot_history` can draw them.
    """
    path = Path(run_dir) / "results.csv"
    if not path.is_file():
        raise FileNotFoundError(f"no results.csv in {run_dir}: has the run finished an epoch?")
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    history: dict[str, list[float]] = {}
    for column in rows[0] if rows else []:
        key = column.strip().replace("train/", "train_").replace("val/", "val_").replace("metrics/", "val_")
        history[key] = [float(row[column]) for row in rows]
    if "epoch" in history:
        history["epoch"] = [int(e) for e in history["epoch"]]
    return history


def _epochs(history: dict[str, list[float]]) -> list[int]:
    lengths = {len(v) for k, v in history.items() if k.startswith(("train_", "val_"))}
    n_epochs = max(lengths, default=0)
    return [int(e) for e in history.get("epoch") or range(1, n_epochs + 1)]


def validated_epochs(history: dict[str, list[float]]) -> list[int]:
    """The epochs at which Ultralytics ran validation.

    With ``val=False`` it validates only after the last epoch and writes 0 in every ``val_`` column of the
    other epochs: an epoch counts as validated when at least one of its ``val_`` values is not 0.
    """
    val_columns = [key for key in history if key.startswith("val_")]
    return [epoch for index, epoch in enumerate(_epochs(history))
            if any(history[key][index] != 0 for key in val_columns)]


def measured_history(history: dict[str, list[float]]) -> dict[str, list[float]]:
    """A copy of ``history`` whose ``val_`` values at epochs without validation are NaN.

    Columns of a run that never validated are dropped, so no plot can show "0" for a loss nobody measured.
    """
    epochs = _epochs(history)
    validated = set(validated_epochs(history))
    if not validated:
        return {key: list(values) for key, values in history.items() if not key.startswith("val_")}
    return {key: ([v if epoch in validated else float("nan") for v, epoch in zip(values, epochs)]
                  if key.startswith("val_") else list(values))
            for key, values in history.items()}


def plot_losses(history: dict[str, list[float]], losses=("box_loss", "cls_loss", "dfl_loss"),
                title: str = "YOLO training losses"):
    """One panel per loss: the training curve, and validation points only at the epochs that were validated."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    present = [loss for loss in losses if f"train_{loss}" in history]
    if not present:
        raise ValueError(f"history has none of {['train_' + loss for loss in losses]}; keys: {sorted(history)}")
    measured, epochs, validated = measured_history(history), _epochs(history), validated_epochs(history)
    where = "every epoch" if len(validated) == len(epochs) else f"epoch {', '.join(map(str, validated))} only"
    fig, axes = plt.subplots(1, len(present), figsize=(5 * len(present), 3.4), squeeze=False, layout="constrained")
    for ax, loss in zip(axes.flat, present):
        ax.plot(epochs, measured[f"train_{loss}"], marker="o", markersize=3, label="train")
        if validated and f"val_{loss}" in measured:
            ax.plot(epochs, measured[f"val_{loss}"], marker="s", linestyle="--", label=f"validation ({where})")
        ax.set(xlabel="epoch", ylabel=loss, title=f"{loss} per epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title + ("" if validated else " (no validation was run)"))
    return fig


def train_into(model: nn.Module, cfg: str, **train_kwargs: Any) -> dict[str, list[float]]:
    """Train a fresh ``YOLO(cfg)`` with ``train_kwargs`` and load its best weights into ``model``.

    ``model`` must be built from the same ``cfg`` with the dataset's class count. Returns the run's
    per-epoch history (see :func:`read_history`).
    """
    from ultralytics import YOLO

    quiet()
    if train_kwargs.get("project") and train_kwargs.get("name"):
        # With exist_ok, Ultralytics reuses the run folder and *appends* to its results.csv: a re-run's
        # history would start with the previous run's epochs (and a different version's columns).
        (Path(train_kwargs["project"]) / train_kwargs["name"] / "results.csv").unlink(missing_ok=True)
    trainer = YOLO(cfg)
    bar = tqdm(total=train_kwargs.get("epochs", 100), desc=f"training {Path(cfg).stem}", unit="epoch")

    def show_epoch(run):  # one bar step per epoch, with the mean training losses
        losses = run.tloss
        if losses is not None and not isinstance(losses, dict):  # a tensor before Ultralytics 8.3.2x
            losses = run.label_loss_items(losses, prefix="train")
        bar.set_postfix({name: f"{float(value):.3f}" for name, value in (losses or {}).items()})
        bar.update(1)

    trainer.add_callback("on_train_epoch_end", show_epoch)
    try:
        trainer.train(**train_kwargs)
    finally:
        bar.close()
    trained = trainer.model.float().state_dict()
    mine = model.state_dict()
    wrong = [k for k in mine if k not in trained or trained[k].shape != mine[k].shape]
    if wrong or len(trained) != len(mine):
        raise ValueError(f"the trained network does not fit the given model (first differences: {wrong[:3]}); "
                         f"build the model from {cfg!r} with nc = the dataset's class count")
    model.load_state_dict(trained)
    return read_history(Path(trainer.trainer.save_dir))


def wrap(model: nn.Module, names: dict[int, str] | list[str] | tuple[str, ...], cfg: str = "yolov8n.yaml"):
    """An ``ultralytics.YOLO`` that predicts/validates/exports with ``model`` (an Ultralytics network)."""
    from ultralytics import YOLO

    quiet()
    names = dict(enumerate(names)) if not isinstance(names, dict) else dict(names)
    head_classes = getattr(model.model[-1], "nc", None) if hasattr(model, "model") else None
    if head_classes is not None and head_classes != len(names):
        raise ValueError(f"the model predicts {head_classes} classes but {len(names)} names were given")
    wrapper = YOLO(cfg)
    model.names = names
    if not getattr(model, "args", None):  # what a saved Ultralytics checkpoint carries; export reads it
        model.args = {"task": wrapper.task, "imgsz": 640, "data": None}
    if not getattr(model, "task", None):
        model.task = wrapper.task
    wrapper.model = model
    return wrapper


def _shapes_yolov8n_class():
    from ultralytics.nn.tasks import DetectionModel

    class ShapesYOLOv8n(DetectionModel):
        """YOLOv8n from Ultralytics' yolov8n.yaml with `nc` classes: the network YOLO(...).train builds."""

        def __init__(self, nc=3):
            super().__init__("yolov8n.yaml", nc=nc, verbose=False)

    ShapesYOLOv8n.__module__, ShapesYOLOv8n.__qualname__ = __name__, "ShapesYOLOv8n"  # importable and picklable
    return ShapesYOLOv8n


def __getattr__(name: str):
    """``ShapesYOLOv8n`` is defined on first use, so importing this module does not import Ultralytics."""
    if name == "ShapesYOLOv8n":
        globals()[name] = _shapes_yolov8n_class()
        return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
