"""Checkers for chapter 00's exercises (tensors, broadcasting, accuracy, the training step)."""

from __future__ import annotations

import copy

import torch
from torch import nn

from ..checks import CheckFailed, expect_close, expect_dtype, expect_shape, expect_type, run_checks


def _images(n=2, h=3, w=4, c=3, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, h, w, c), dtype=torch.uint8, generator=generator)


def _rounded(values: torch.Tensor) -> list[float]:
    return [round(v, 3) for v in values.tolist()]


def check_to_float_batch(fn):
    """uint8 N×H×W×C → float32 N×C×H×W in [0, 1]."""
    def layout(fn):
        images = _images()
        out = fn(images.clone())
        expect_shape(out, (2, 3, 3, 4), "the output for a 2×3×4×3 (N×H×W×C) batch")
        expect_dtype(out, torch.float32, "the output")
        if out.max() > 1.0 + 1e-6:
            raise CheckFailed(f"values go up to {out.max().item():.1f}: divide by 255 to reach [0, 1]")
        # Pixel (n=1, y=2, x=3) keeps its three channel values in the new layout.
        got, expected = out[1, :, 2, 3], images[1, 2, 3].float() / 255
        if not torch.allclose(got, expected):
            raise CheckFailed(f"pixel (n=1, y=2, x=3) should have channels {_rounded(expected)}, got "
                              f"{_rounded(got)} — did you use reshape/view instead of permute?")

    def extremes(fn):
        images = torch.tensor([[[[0, 128, 255]]]], dtype=torch.uint8)
        expect_close(fn(images), torch.tensor([[[[0.0]], [[128 / 255]], [[1.0]]]]), "a 1×1 RGB image")

    return run_checks("to_float_batch", fn, [("layout and range", layout), ("0, 128, 255", extremes)])


def check_accuracy_from_logits(fn):
    """Fraction of rows whose arg-max is the label, as a Python float."""
    logits = torch.tensor([[2.0, 1.0, 0.1], [0.1, 3.0, 0.2], [0.3, 0.2, 0.9], [1.0, 2.0, 0.5]])

    def all_right(fn):
        value = fn(logits, torch.tensor([0, 1, 2, 1]))
        expect_type(value, float, "the accuracy")
        expect_close(value, 1.0, "for all-correct logits, your accuracy")

    def half_right(fn):
        expect_close(fn(logits, torch.tensor([0, 1, 0, 0])), 0.5,
                     "with 2 of 4 rows correct, your accuracy")

    def per_row(fn):
        # A 2×2 case where arg-max over the wrong axis gives a different answer.
        expect_close(fn(torch.tensor([[5.0, 0.0], [4.0, 1.0]]), torch.tensor([0, 1])), 0.5,
                     "for logits [[5, 0], [4, 1]] and labels [0, 1] (arg-max per row!), your accuracy")

    return run_checks("accuracy_from_logits", fn, [("all correct", all_right), ("half correct", half_right),
                                                   ("arg-max axis", per_row)])


def check_pairwise_squared_distances(fn):
    """(N, D), (M, D) → (N, M) squared distances."""
    def small(fn):
        a = torch.tensor([[0.0, 0.0], [1.0, 1.0]])
        b = torch.tensor([[0.0, 0.0], [3.0, 4.0], [1.0, 0.0]])
        expect_close(fn(a, b), torch.tensor([[0.0, 25.0, 1.0], [2.0, 13.0, 1.0]]),
                     "distances from [[0,0],[1,1]] to [[0,0],[3,4],[1,0]]")

    def random(fn):
        generator = torch.Generator().manual_seed(1)
        a, b = torch.randn(5, 7, generator=generator), torch.randn(3, 7, generator=generator)
        expect_close(fn(a, b), torch.cdist(a, b) ** 2, "distances for random 5×7 and 3×7 inputs", atol=1e-4)

    return run_checks("pairwise_squared_distances", fn, [("worked example", small), ("random", random)])


def _tiny_problem():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3))
    inputs, targets = torch.randn(8, 4), torch.randint(0, 3, (8,))
    return model, inputs, targets


def check_train_step(fn):
    """zero_grad → forward → loss → backward → step, returning the loss as a float."""
    def one_step(fn):
        model, inputs, targets = _tiny_problem()
        reference = copy.deepcopy(model)
        before = [p.detach().clone() for p in model.parameters()]
        loss = fn(model, inputs, targets, torch.optim.SGD(model.parameters(), lr=0.1), nn.CrossEntropyLoss())
        expect_type(loss, float, "the returned loss (use loss.item())")
        if all(torch.equal(b, p) for b, p in zip(before, model.parameters())):
            raise CheckFailed("the parameters did not change: call optimizer.step() after backward()")
        expected_loss = nn.CrossEntropyLoss()(reference(inputs), targets).item()
        expect_close(loss, expected_loss, "the returned loss (computed before the update)")

    def two_steps(fn):
        model, inputs, targets = _tiny_problem()
        reference = copy.deepcopy(model)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        ref_optimizer = torch.optim.SGD(reference.parameters(), lr=0.1)
        for _ in range(2):
            fn(model, inputs, targets, optimizer, nn.CrossEntropyLoss())
            ref_optimizer.zero_grad()
            nn.CrossEntropyLoss()(reference(inputs), targets).backward()
            ref_optimizer.step()
        for (name, p), q in zip(model.named_parameters(), reference.parameters()):
            if not torch.allclose(p, q, atol=1e-6):
                raise CheckFailed(f"after two steps {name} differs from the reference: gradients "
                                  "accumulate unless you call optimizer.zero_grad() every step")

    return run_checks("train_step", fn, [("one step", one_step), ("two steps", two_steps)])
