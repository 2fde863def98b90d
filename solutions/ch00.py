"""Reference solutions for chapter 00's exercises (setup and the PyTorch primer)."""

import torch


def to_float_batch(images: torch.Tensor) -> torch.Tensor:
    """uint8 images N×H×W×C (NumPy/PIL layout) → float32 N×C×H×W in [0, 1] (PyTorch layout)."""
    # permute moves axes; reshape would keep the memory order and scramble the pixels.
    return images.permute(0, 3, 1, 2).float() / 255.0


def accuracy_from_logits(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction of rows whose largest logit is at the true label."""
    return (logits.argmax(dim=1) == labels).float().mean().item()


def pairwise_squared_distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(N, D) and (M, D) → (N, M) squared Euclidean distances, by broadcasting (no loops)."""
    return ((a[:, None, :] - b[None, :, :]) ** 2).sum(dim=-1)


def train_step(model, inputs, targets, optimizer, loss_fn) -> float:
    """One optimisation step; returns the batch loss as a Python float."""
    optimizer.zero_grad()
    loss = loss_fn(model(inputs), targets)
    loss.backward()
    optimizer.step()
    return loss.item()
