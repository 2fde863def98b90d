"""Checkers for chapter 00's exercises (broadcasting, the training step, label smoothing).

Each checker runs the student's function and an independent reference on hand-made edge cases and seeded
random inputs, and fails when an input was changed in place (:func:`course_utils.checks.call`).
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from ..checks import (
    CheckFailed,
    call,
    close,
    expect_close,
    expect_float_tensor,
    expect_type,
    run_checks,
)


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _reference_distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    a, b = a.double(), b.double()
    return torch.stack([torch.stack([((x - y) ** 2).sum() for y in b]) for x in a]) if len(a) and len(b) \
        else torch.zeros(len(a), len(b), dtype=torch.float64)


def check_pairwise_squared_distances(fn):
    """(N, D), (M, D) → (N, M) squared distances."""
    def small(fn):
        a = torch.tensor([[0.0, 0.0], [1.0, 1.0]])
        b = torch.tensor([[0.0, 0.0], [3.0, 4.0], [1.0, 0.0]])
        expect_close(call(fn, a, b), torch.tensor([[0.0, 25.0, 1.0], [2.0, 13.0, 1.0]]),
                     "distances from [[0,0],[1,1]] to [[0,0],[3,4],[1,0]]", atol=1e-4)

    def random(fn):
        generator = _generator(1)
        for n, m, d, dtype in ((5, 3, 7, torch.float32), (1, 4, 1, torch.float32), (6, 6, 3, torch.float64)):
            a = torch.randn(n, d, generator=generator, dtype=dtype) * 2 + 1
            b = torch.randn(m, d, generator=generator, dtype=dtype) * 2 - 1
            expect_close(call(fn, a, b), _reference_distances(a, b),
                         f"distances for random {n}×{d} and {m}×{d} ({dtype}) inputs", atol=1e-4)

    return run_checks("pairwise_squared_distances", fn, [("worked example", small), ("random", random)])


def _tiny_problem(seed: int = 0):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(4, 5), nn.Tanh(), nn.Linear(5, 3))
    inputs, targets = torch.randn(8, 4), torch.randint(0, 3, (8,))
    return model, inputs, targets


_OPTIMIZERS = {
    "SGD (lr 0.1)": lambda params: torch.optim.SGD(params, lr=0.1),
    "SGD with momentum and weight decay": lambda params: torch.optim.SGD(params, lr=0.05, momentum=0.9,
                                                                         weight_decay=0.01),
    "Adam (lr 0.01)": lambda params: torch.optim.Adam(params, lr=0.01),
}


def check_train_step(fn):
    """zero_grad → forward → loss → backward → step, returning the loss as a float."""
    def one_step(fn):
        model, inputs, targets = _tiny_problem()
        reference = copy.deepcopy(model)
        before = [p.detach().clone() for p in model.parameters()]
        loss = call(fn, model, inputs, targets, torch.optim.SGD(model.parameters(), lr=0.1), nn.CrossEntropyLoss())
        expect_type(loss, float, "the returned loss (use loss.item())")
        if all(torch.equal(b, p) for b, p in zip(before, model.parameters())):
            raise CheckFailed("the parameters did not change: call optimizer.step() after backward()")
        expected_loss = nn.CrossEntropyLoss()(reference(inputs), targets).item()
        expect_close(loss, expected_loss, "the returned loss (computed before the update)")

    def three_steps(fn):
        for seed, (name, make) in enumerate(_OPTIMIZERS.items()):
            model, inputs, targets = _tiny_problem(seed)
            reference = copy.deepcopy(model)
            optimizer, ref_optimizer = make(model.parameters()), make(reference.parameters())
            loss_fn = nn.CrossEntropyLoss(label_smoothing=0.1) if seed == 2 else nn.CrossEntropyLoss()
            for step in range(3):
                got = call(fn, model, inputs, targets, optimizer, loss_fn)
                ref_optimizer.zero_grad()
                expected = loss_fn(reference(inputs), targets)
                expected.backward()
                ref_optimizer.step()
                expect_close(got, expected.item(), f"with {name}, the loss returned at step {step + 1}")
            for (parameter_name, p), q in zip(model.named_parameters(), reference.parameters()):
                if not torch.allclose(p, q, atol=1e-6):
                    raise CheckFailed(f"with {name}, after three steps {parameter_name} differs from the reference: "
                                      "zero the gradients every step, then let optimizer.step() do the update "
                                      "(a hand-written p -= lr·grad ignores momentum, weight decay and Adam)")

    return run_checks("train_step", fn, [("one step", one_step), ("three steps with three optimisers", three_steps)])


# --- label smoothing ------------------------------------------------------------------------------------

def _smoothed_targets(labels: torch.Tensor, classes: int, smoothing: float, per_other: bool = False):
    """(1 − ε)·one-hot + ε/C everywhere (PyTorch), or with ``per_other`` ε/(C − 1) on the other classes."""
    one_hot = F.one_hot(labels, classes).double()
    if per_other:
        return one_hot * (1 - smoothing) + (1 - one_hot) * smoothing / max(classes - 1, 1)
    return one_hot * (1 - smoothing) + smoothing / classes


def _expect_smoothed_loss(fn, logits: torch.Tensor, labels: torch.Tensor, smoothing, what: str) -> None:
    """The loss and its gradient must equal F.cross_entropy(..., label_smoothing=ε)'s."""
    logits = logits.clone().requires_grad_(True)
    got = call(fn, logits, labels) if smoothing is None else call(fn, logits, labels, smoothing)
    epsilon = 0.1 if smoothing is None else smoothing
    expect_float_tensor(got, f"{what}: the loss")
    if got.dim() != 0:
        raise CheckFailed(f"{what}: the loss has shape {tuple(got.shape)}; return the mean over the batch, "
                          "a 0-dimensional tensor")
    reference_logits = logits.detach().double().requires_grad_(True)
    expected = F.cross_entropy(reference_logits, labels, label_smoothing=epsilon)
    if not close(got, expected.detach(), atol=1e-5):
        classes = logits.shape[1]
        soft = -(torch.log_softmax(logits.detach().double(), 1) * _smoothed_targets(labels, classes, epsilon, True))
        if classes > 2 and epsilon > 0 and close(got, soft.sum(1).mean(), atol=1e-5):
            raise CheckFailed(f"{what}: your loss {float(got.detach()):.6g} spreads ε over the C − 1 other classes; "
                              f"PyTorch's label smoothing (expected {float(expected.detach()):.6g}) gives every class ε/C, "
                              "the true one included")
        expect_close(got, float(expected.detach()), f"{what}: your loss", atol=1e-5)
    if not got.requires_grad:
        raise CheckFailed(f"{what}: the loss is detached from the logits (no grad_fn): return the tensor, "
                          "not .item(), and compute it with torch operations so backward() reaches the logits")
    got.backward()
    expected.backward()
    if logits.grad is None:
        raise CheckFailed(f"{what}: backward() did not reach the logits")
    expect_close(logits.grad, reference_logits.grad, f"{what}: the gradient of your loss w.r.t. the logits",
                 atol=1e-6)


def check_label_smoothing_cross_entropy(fn):
    """``fn(logits N×C, labels N, smoothing=0.1) -> 0-dim tensor``, as F.cross_entropy(label_smoothing=ε)."""
    def hand_made(fn):
        uniform = torch.zeros(3, 4)
        for epsilon in (0.0, 0.1, 1.0):
            expect_close(call(fn, uniform, torch.tensor([0, 1, 3]), epsilon), torch.tensor(4.0).log().item(),
                         f"for equal logits (every class has p = 1/4) and ε = {epsilon}, your loss", atol=1e-5)
        confident = torch.tensor([[4.0, 0.0, 0.0]])
        _expect_smoothed_loss(fn, confident, torch.tensor([0]), 0.0, "ε = 0 (plain cross-entropy)")
        _expect_smoothed_loss(fn, confident, torch.tensor([0]), 0.3, "logits [4, 0, 0], label 0, ε = 0.3")
        _expect_smoothed_loss(fn, confident, torch.tensor([2]), 0.3, "logits [4, 0, 0], label 2, ε = 0.3")

    def default(fn):
        logits = torch.randn(5, 3, generator=_generator(4))
        _expect_smoothed_loss(fn, logits, torch.tensor([0, 2, 2, 1, 0]), None, "the default smoothing (0.1)")

    def random(fn):
        generator = _generator(5)
        for rows, classes, epsilon, dtype in ((16, 10, 0.1, torch.float32), (1, 2, 0.2, torch.float32),
                                              (7, 5, 0.05, torch.float64), (9, 3, 0.9, torch.float64),
                                              (12, 6, 1.0, torch.float32)):
            logits = torch.randn(rows, classes, generator=generator, dtype=dtype) * 3
            labels = torch.randint(0, min(classes, 2), (rows,), generator=generator)  # some classes absent
            _expect_smoothed_loss(fn, logits, labels, epsilon,
                                  f"{rows} random {dtype} rows of {classes} logits, ε = {epsilon}")

    def large(fn):
        logits = torch.tensor([[1000.0, -1000.0, 0.0], [-500.0, 800.0, 800.0]])
        _expect_smoothed_loss(fn, logits, torch.tensor([0, 2]), 0.1, "logits of ±1000 (exp overflows)")

    return run_checks("label_smoothing_cross_entropy", fn, [
        ("equal logits and hand-made rows", hand_made), ("default ε", default),
        ("random batches vs F.cross_entropy, with gradients", random), ("huge logits", large)])
