"""A readable training/evaluation loop and ``train_or_load`` for the small checkpoints chapters commit.

The loop is the one chapter 00 teaches line by line; later chapters call it instead of rewriting it.
Checkpoints are plain dicts (tensors, numbers, strings) saved under ``data/checkpoints/`` with the
metrics, history and config that made them, and loaded with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import copy
import datetime as _dt
import inspect
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn
from tqdm.auto import tqdm

from . import config


class CheckpointMismatchError(RuntimeError):
    """A checkpoint does not fit the model or config it is being loaded into."""


def accuracy(logits: torch.Tensor, targets: torch.Tensor) -> float:
    """Fraction of rows whose arg-max logit is the target class."""
    if logits.ndim != 2 or targets.ndim != 1 or logits.shape[0] != targets.shape[0]:
        raise ValueError(f"expected logits (N, C) and targets (N,), got {tuple(logits.shape)} and "
                         f"{tuple(targets.shape)}")
    return (logits.argmax(dim=1) == targets).float().mean().item()


def _autocast(device: torch.device, amp: bool):
    # bfloat16 on CPU (no gradient scaler needed); float16 on CUDA.
    if not amp:
        return torch.autocast(device_type=device.type, enabled=False)
    dtype = torch.float16 if device.type == "cuda" else torch.bfloat16
    return torch.autocast(device_type=device.type, dtype=dtype)


def _to(batch, device):
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, (list, tuple)):
        return type(batch)(_to(item, device) for item in batch)
    if isinstance(batch, dict):
        return {key: _to(value, device) for key, value in batch.items()}
    return batch


@torch.no_grad()
def evaluate(model: nn.Module, loader, loss_fn: Callable | None = None, device=None,
             amp: bool = False, max_batches: int | None = None) -> dict[str, float]:
    """Mean loss (when ``loss_fn`` is given) and accuracy of ``model`` over ``loader``."""
    device = torch.device(device) if device else config.get_device()
    model.eval().to(device)
    totals, count = defaultdict(float), 0
    for batch_index, (inputs, targets) in enumerate(loader):
        if max_batches is not None and batch_index >= max_batches:
            break
        inputs, targets = _to(inputs, device), _to(targets, device)
        with _autocast(device, amp):
            logits = model(inputs)
        n = targets.shape[0]
        if loss_fn is not None:
            totals["loss"] += loss_fn(logits.float(), targets).item() * n
        totals["accuracy"] += accuracy(logits, targets) * n
        count += n
    if count == 0:
        raise ValueError("evaluate() saw no batches: the loader is empty")
    return {name: total / count for name, total in totals.items()}


def fit(model: nn.Module, train_loader, val_loader=None, *, epochs: int, optimizer: torch.optim.Optimizer,
        loss_fn: Callable | None = None, scheduler=None, device=None, amp: bool = False,
        max_steps_per_epoch: int | None = None, progress: bool = True) -> dict[str, list[float]]:
    """Train for ``epochs`` and return the history: per-epoch train/val loss and accuracy, seconds.

    ``scheduler`` is stepped once per batch (suits warm-up + cosine schedules built per step).
    ``max_steps_per_epoch`` caps the batches per epoch (fast mode uses it).
    ``loss_fn`` defaults to cross-entropy on logits. Targets may be any structure ``loss_fn`` accepts
    (a detector's dict of tensors, say); accuracy is recorded only for class-index targets.
    """
    loss_fn = loss_fn if loss_fn is not None else nn.CrossEntropyLoss()
    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive int, got {epochs!r}")
    device = torch.device(device) if device else config.get_device()
    model.to(device)
    history = defaultdict(list)
    for epoch in range(1, epochs + 1):
        model.train()
        started, seen, loss_sum, correct_sum, classified = time.perf_counter(), 0, 0.0, 0.0, 0
        steps = len(train_loader) if max_steps_per_epoch is None else min(len(train_loader),
                                                                          max_steps_per_epoch)
        bar = tqdm(total=steps, desc=f"epoch {epoch}/{epochs}", disable=not progress, leave=False)
        for step, (inputs, targets) in enumerate(train_loader):
            if step >= steps:
                break
            inputs, targets = _to(inputs, device), _to(targets, device)
            optimizer.zero_grad(set_to_none=True)
            with _autocast(device, amp):
                logits = model(inputs)
                loss = loss_fn(logits, targets)
            loss.backward()
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            n = len(inputs)
            seen += n
            loss_sum += loss.item() * n
            if isinstance(targets, torch.Tensor) and targets.ndim == 1 and getattr(logits, "ndim", 0) == 2:
                correct_sum += accuracy(logits.detach(), targets) * n
                classified += n
            bar.update(1)
            bar.set_postfix(loss=f"{loss_sum / seen:.3f}")
        bar.close()
        history["epoch"].append(epoch)
        history["train_loss"].append(loss_sum / max(seen, 1))
        if classified:
            history["train_accuracy"].append(correct_sum / classified)
        if val_loader is not None:
            val = evaluate(model, val_loader, loss_fn, device, amp)
            history["val_loss"].append(val["loss"])
            history["val_accuracy"].append(val["accuracy"])
        history["seconds"].append(time.perf_counter() - started)
        if progress:
            print(_epoch_line(history))
    return dict(history)


def _epoch_line(history) -> str:
    parts = [f"epoch {history['epoch'][-1]}", f"train loss {history['train_loss'][-1]:.4f}"]
    if history.get("train_accuracy"):
        parts.append(f"train acc {history['train_accuracy'][-1]:.4f}")
    if history.get("val_loss"):
        parts += [f"val loss {history['val_loss'][-1]:.4f}", f"val acc {history['val_accuracy'][-1]:.4f}"]
    parts.append(f"{history['seconds'][-1]:.1f} s")
    return " | ".join(parts)


# --- checkpoints ---------------------------------------------------------------------------------------

def checkpoint_path(name: str) -> Path:
    if not name or any(ch in name for ch in "/\\") or name.startswith("."):
        raise ValueError(f"checkpoint name must be a plain file stem such as 'ch00_mlp', got {name!r}")
    return config.checkpoints_dir() / f"{name}.pt"


def save_checkpoint(name: str, model: nn.Module, *, config_used: dict, metrics: dict,
                    history: dict | None = None, half: bool = False) -> Path:
    """Save weights with the metrics, history, config and model source that produced them.

    ``half=True`` stores floating-point tensors as float16, halving the file (how a 3 M-parameter
    YOLOv8n stays under the 10 MB checkpoint limit); :func:`load_checkpoint` casts them back.
    """
    def stored(tensor):
        tensor = tensor.detach().cpu()
        return tensor.half() if half and tensor.is_floating_point() else tensor

    try:
        source = inspect.getsource(type(model))
    except (OSError, TypeError):
        source = f"<source of {type(model).__qualname__} not available>"
    payload = {
        "state_dict": {k: stored(v) for k, v in model.state_dict().items()},
        "model_class": type(model).__qualname__,
        "model_source": source,
        "config": dict(config_used),
        "metrics": {k: float(v) for k, v in metrics.items()},
        "history": {k: [float(x) for x in v] for k, v in (history or {}).items()},
        "torch_version": str(torch.__version__),
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "mode": config.mode(),
    }
    path = checkpoint_path(name)
    temp = path.with_suffix(".pt.part")
    torch.save(payload, temp)
    temp.replace(path)
    return path


def load_checkpoint(name: str, model: nn.Module, config_expected: dict | None = None) -> dict:
    """Load a checkpoint into ``model``; a different config, class or tensor shape is an error.

    Returns the checkpoint dict (without the state dict) so callers can show its metrics and history.
    """
    path = checkpoint_path(name)
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint {path}: run the notebook in full mode to create it")
    payload = torch.load(path, map_location="cpu", weights_only=True)
    problems = []
    if payload.get("model_class") != type(model).__qualname__:
        problems.append(f"model class: checkpoint has {payload.get('model_class')}, "
                        f"got {type(model).__qualname__}")
    if config_expected is not None and payload.get("config") != dict(config_expected):
        problems.append(f"config: checkpoint has {payload.get('config')}, got {dict(config_expected)}")
    current = model.state_dict()
    saved = payload["state_dict"]
    missing, unexpected = sorted(set(current) - set(saved)), sorted(set(saved) - set(current))
    if missing or unexpected:
        problems.append(f"parameters: missing {missing[:5]}, unexpected {unexpected[:5]}")
    for key in sorted(set(current) & set(saved)):
        if current[key].shape != saved[key].shape:
            problems.append(f"shape of {key}: checkpoint {tuple(saved[key].shape)}, "
                            f"model {tuple(current[key].shape)}")
    if problems:
        raise CheckpointMismatchError(
            f"checkpoint {path.name} does not match the current code:\n  - " + "\n  - ".join(problems)
            + "\nRetrain it with COURSE_RETRAIN=1 in full mode (or revert the model change).")
    model.load_state_dict(saved, strict=True)
    return {k: v for k, v in payload.items() if k != "state_dict"}


def train_or_load(name: str, model: nn.Module, train_fn: Callable[[nn.Module], dict], *,
                  config_used: dict, half: bool = False) -> dict:
    """Train ``model`` with ``train_fn`` or load its committed checkpoint, and say which happened.

    ``train_fn(model)`` trains in place and returns ``{"metrics": {...}, "history": {...}}``.
    * full mode: trains and saves the checkpoint — unless ``COURSE_USE_CHECKPOINTS=1`` and a
      checkpoint exists, in which case it loads it (instructors skipping long training);
    * fast mode: runs ``train_fn`` on a throw-away copy (so the training code is exercised on the
      tiny fast-mode budget), then loads the committed checkpoint so quality checks stay meaningful;
      with no checkpoint it keeps the smoke-trained weights and never saves them.
    ``COURSE_RETRAIN=1`` forces training in full mode even when loading was asked for.
    ``half=True`` saves the checkpoint in float16 (see :func:`save_checkpoint`).
    Returns ``{"source": "trained"|"checkpoint"|"smoke", "metrics": ..., "history": ...}``.
    """
    path = checkpoint_path(name)
    retrain = config._env_flag("COURSE_RETRAIN") and not config.is_fast()
    if config.use_checkpoints() and path.exists() and not retrain:
        if config.is_fast():
            train_fn(copy.deepcopy(model))
        info = load_checkpoint(name, model, config_used)
        print(f"Loaded checkpoint {path.name} (trained {info['created']}, {info['mode']} mode): "
              + ", ".join(f"{k} {v:.4f}" for k, v in info["metrics"].items()))
        return {"source": "checkpoint", "metrics": info["metrics"], "history": info["history"]}
    outcome = train_fn(model)
    if not isinstance(outcome, dict) or "metrics" not in outcome:
        raise TypeError("train_fn must return a dict with 'metrics' (and optionally 'history')")
    if config.is_fast():
        print(f"Fast mode: trained a smoke model only; no checkpoint {path.name} to load and none saved.")
        return {"source": "smoke", **outcome}
    save_checkpoint(name, model, config_used=config_used, metrics=outcome["metrics"],
                    history=outcome.get("history"), half=half)
    size_mb = path.stat().st_size / 1e6
    print(f"Saved checkpoint {path.name} ({size_mb:.2f} MB)")
    return {"source": "trained", "history": outcome.get("history", {}), "metrics": outcome["metrics"]}
