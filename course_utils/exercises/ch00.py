"""Checkers for chapter 00's exercises (tensors, broadcasting, accuracy, the training step).

Each checker runs the student's function and an independent reference on hand-made edge cases and seeded
random inputs, and fails when an input was changed in place (:func:`course_utils.checks.call`).
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from ..checks import (
    CheckFailed,
    call,
    close,
    expect_close,
    expect_dtype,
    expect_shape,
    expect_type,
    run_checks,
)


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _images(n=2, h=3, w=4, c=3, seed=0):
    return torch.randint(0, 256, (n, h, w, c), dtype=torch.uint8, generator=_generator(seed))


def _expect_float_batch(fn, images: torch.Tensor, what: str) -> None:
    n, h, w, c = images.shape
    out = call(fn, images)
    expect_shape(out, (n, c, h, w), f"the output for a {n}×{h}×{w}×{c} (N×H×W×C) batch")
    expect_dtype(out, torch.float32, "the output")
    expected = images.permute(0, 3, 1, 2).double() / 255
    if close(out, expected, atol=1e-6):
        return
    if close(out, expected * 255, atol=1e-4):
        raise CheckFailed(f"{what}: the values go up to {out.max().item():.0f}: divide by 255 to reach [0, 1]")
    if close(out, expected * 255 / 256, atol=1e-6):
        raise CheckFailed(f"{what}: you divided by 256; the brightest level 255 must become 1.0, so divide by 255")
    if close(out, images.reshape(n, c, h, w).double() / 255, atol=1e-6):
        raise CheckFailed(f"{what}: the pixels are scrambled — reshape/view keeps the memory order (N×H×W×C); "
                          "use permute(0, 3, 1, 2) to move the channel axis")
    expect_close(out, expected, f"{what}: the output", atol=1e-6)


def check_to_float_batch(fn):
    """uint8 N×H×W×C → float32 N×C×H×W in [0, 1]."""
    def layout(fn):
        _expect_float_batch(fn, _images(), "a 2×3×4×3 batch")

    def extremes(fn):
        images = torch.tensor([[[[0, 128, 255]]]], dtype=torch.uint8)
        expect_close(call(fn, images), torch.tensor([[[[0.0]], [[128 / 255]], [[1.0]]]]), "a 1×1 RGB image",
                     atol=1e-6)

    def other_shapes(fn):
        for n, h, w, c in ((1, 5, 2, 1), (3, 2, 7, 4), (1, 1, 1, 3)):
            _expect_float_batch(fn, _images(n, h, w, c, seed=n + h), f"a {n}×{h}×{w}×{c} batch")

    return run_checks("to_float_batch", fn, [("layout and range", layout), ("0, 128, 255", extremes),
                                             ("one, three and four channels", other_shapes)])


def _reference_accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    return sum(int(max(range(len(row)), key=lambda j: row[j]) == label)
               for row, label in zip(logits.tolist(), labels.tolist())) / len(labels)


def check_accuracy_from_logits(fn):
    """Fraction of rows whose arg-max is the label, as a Python float."""
    logits = torch.tensor([[2.0, 1.0, 0.1], [0.1, 3.0, 0.2], [0.3, 0.2, 0.9], [1.0, 2.0, 0.5]])

    def all_right(fn):
        value = call(fn, logits.clone(), torch.tensor([0, 1, 2, 1]))
        expect_type(value, float, "the accuracy")
        expect_close(value, 1.0, "for all-correct logits, your accuracy")

    def half_right(fn):
        expect_close(call(fn, logits.clone(), torch.tensor([0, 1, 0, 0])), 0.5,
                     "with 2 of 4 rows correct, your accuracy")
        expect_close(call(fn, logits.clone(), torch.tensor([2, 2, 1, 0])), 0.0,
                     "with no row correct, your accuracy")

    def per_row(fn):
        # A 2×2 case where arg-max over the wrong axis gives a different answer.
        expect_close(call(fn, torch.tensor([[5.0, 0.0], [4.0, 1.0]]), torch.tensor([0, 1])), 0.5,
                     "for logits [[5, 0], [4, 1]] and labels [0, 1] (arg-max per row!), your accuracy")

    def random(fn):
        generator = _generator(3)
        for rows, classes in ((37, 10), (1, 4), (9, 2)):
            batch = torch.randn(rows, classes, generator=generator, dtype=torch.float64)
            labels = torch.randint(0, classes, (rows,), generator=generator)
            got = call(fn, batch, labels)
            expect_type(got, float, "the accuracy")
            expect_close(got, _reference_accuracy(batch, labels), f"for {rows} random rows of {classes} logits, "
                         "your accuracy", atol=1e-6)

    return run_checks("accuracy_from_logits", fn, [("all correct", all_right), ("half correct", half_right),
                                                   ("arg-max axis", per_row), ("random batches", random)])


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
