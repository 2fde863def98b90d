"""Reference solutions for chapter 00's exercises (setup and the PyTorch primer)."""

import torch


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


def label_smoothing_cross_entropy(logits: torch.Tensor, labels: torch.Tensor,
                                  smoothing: float = 0.1) -> torch.Tensor:
    """Mean cross-entropy against smoothed targets, as ``F.cross_entropy(..., label_smoothing=smoothing)``.

    The target of each row is (1 − ε)·one_hot(label) + ε/C on every class (the true one included), so the
    loss is (1 − ε)·(−log p_label) + ε·mean_c(−log p_c).
    """
    # log_softmax subtracts the row maximum before exp: no overflow even for logits of ±1000.
    log_probs = torch.log_softmax(logits, dim=1)
    true_class = -log_probs.gather(1, labels[:, None]).squeeze(1)
    uniform = -log_probs.mean(dim=1)
    return ((1 - smoothing) * true_class + smoothing * uniform).mean()
