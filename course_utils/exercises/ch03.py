"""Checkers for chapter 03's exercises (box IoU, distance IoU, the focal loss).

Each is compared with torchvision.ops (box_iou, distance_box_iou, sigmoid_focal_loss) on hand-made and
seeded random inputs, in float32 and float64, with the gradients where the answer is used as a loss.
"""

from __future__ import annotations

import math

import torch
from torchvision import ops

from ..checks import CheckFailed, call, close, expect_close, expect_float_tensor, expect_shape, run_checks


def _boxes(rows) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float32).reshape(-1, 4)


def _random_boxes(n: int, generator: torch.Generator, size: float = 50.0) -> torch.Tensor:
    corners = torch.rand(n, 2, 2, generator=generator) * size
    return torch.cat([corners.min(dim=1).values, corners.max(dim=1).values], dim=-1)


def check_box_iou(fn):
    """``fn(boxes_a N×4, boxes_b M×4) -> N×M`` IoU of xyxy boxes, as torchvision.ops.box_iou."""
    def special_pairs(fn):
        cases = [("identical boxes", [0, 0, 10, 10], [0, 0, 10, 10], 1.0),
                 ("disjoint boxes", [0, 0, 10, 10], [20, 20, 30, 30], 0.0),
                 ("boxes apart in x only", [0, 0, 10, 10], [20, 0, 30, 10], 0.0),
                 ("boxes sharing an edge", [0, 0, 10, 10], [10, 0, 20, 10], 0.0),
                 ("a box inside another", [0, 0, 10, 10], [2, 2, 7, 7], 25 / 100),
                 ("half-overlapping boxes", [0, 0, 10, 10], [5, 0, 15, 10], 50 / 150)]
        for what, a, b, expected in cases:
            got = call(fn, _boxes(a), _boxes(b))
            expect_shape(got, (1, 1), "the IoU of one box with one box")
            if not abs(float(got[0, 0]) - expected) <= 1e-5:  # NaN fails too
                hint = " — clamp the intersection's width and height at 0" if expected == 0 else ""
                hint = hint or (" — divide by the union, not by one box's area" if "inside" in what else "")
                raise CheckFailed(f"your IoU of {what} {a} and {b} is {float(got[0, 0]):.4f}, expected {expected:.4f}{hint}")

    def against_torchvision(fn):
        generator = torch.Generator().manual_seed(0)
        for n, m, dtype in ((7, 5, torch.float32), (1, 4, torch.float32), (3, 1, torch.float64), (6, 6, torch.float64)):
            boxes_a, boxes_b = _random_boxes(n, generator).to(dtype), _random_boxes(m, generator).to(dtype)
            got = call(fn, boxes_a, boxes_b)
            expect_shape(got, (n, m), f"the IoU matrix of {n} boxes with {m} boxes")
            expect_close(got, ops.box_iou(boxes_a.double(), boxes_b.double()), f"the IoU matrix of {n} {dtype} "
                         f"boxes with {m} boxes")

    return run_checks("box_iou", fn, [("special cases", special_pairs), ("random boxes vs torchvision", against_torchvision)])




# --- distance IoU ---------------------------------------------------------------------------------------

def _expect_diou(fn, boxes_a: torch.Tensor, boxes_b: torch.Tensor, what: str) -> None:
    """Values and gradients (w.r.t. both box sets) equal torchvision.ops.distance_box_iou's."""
    a, b = boxes_a.clone().requires_grad_(True), boxes_b.clone().requires_grad_(True)
    got = call(fn, a, b)
    expect_float_tensor(got, f"{what}: the DIoU matrix")
    expect_shape(got, (len(boxes_a), len(boxes_b)), f"{what}: the DIoU matrix")
    reference_a, reference_b = (boxes.detach().double().requires_grad_(True) for boxes in (boxes_a, boxes_b))
    expected = ops.distance_box_iou(reference_a, reference_b)
    if not close(got, expected.detach(), atol=1e-5):
        iou = ops.box_iou(boxes_a.double(), boxes_b.double())
        if len(iou) and close(got, iou, atol=1e-5) and not close(iou, expected.detach(), atol=1e-5):
            raise CheckFailed(f"{what}: you return the plain IoU; subtract the squared distance between the "
                              "box centres divided by the squared diagonal of the smallest enclosing box")
        expect_close(got, expected.detach(), f"{what}: the DIoU matrix", atol=1e-5)
    if got.numel() == 0:
        return
    if not got.requires_grad:
        raise CheckFailed(f"{what}: your DIoU is detached from the boxes; DIoU is a training loss, so compute it "
                          "with torch operations (no .tolist(), NumPy or .detach())")
    weights = torch.linspace(-1, 2, got.numel()).reshape(got.shape)  # a loss that weighs every pair differently
    (got * weights.to(got.dtype)).sum().backward()
    (expected * weights.double()).sum().backward()
    for name, mine, theirs in (("first", a.grad, reference_a.grad), ("second", b.grad, reference_b.grad)):
        if mine is None:
            raise CheckFailed(f"{what}: backward() did not reach the {name} set of boxes")
        expect_close(mine, theirs, f"{what}: the gradient w.r.t. the {name} boxes", atol=1e-5, rtol=1e-3)


def check_distance_box_iou(fn):
    """``fn(boxes_a N×4, boxes_b M×4) -> N×M`` DIoU of xyxy boxes, as torchvision.ops.distance_box_iou."""
    def special_pairs(fn):
        cases = [("identical boxes", [0, 0, 10, 10], [0, 0, 10, 10], 1.0),
                 ("a box centred inside another (same centre: DIoU = IoU)", [0, 0, 10, 10], [3, 3, 7, 7], 0.16),
                 ("boxes sharing an edge", [0, 0, 10, 10], [10, 0, 20, 10], -100 / 500),
                 ("disjoint boxes on a diagonal", [0, 0, 2, 2], [8, 8, 10, 10], -128 / 200)]
        for what, first, second, expected in cases:
            got = call(fn, _boxes(first), _boxes(second))
            expect_shape(got, (1, 1), "the DIoU of one box with one box")
            iou = float(ops.box_iou(_boxes(first), _boxes(second))[0, 0])
            if abs(iou - expected) > 1e-5 and abs(float(got[0, 0]) - iou) <= 1e-5:
                raise CheckFailed(f"your DIoU of {what} {first} and {second} is the plain IoU {iou:.4g}; subtract "
                                  "the squared centre distance over the enclosing box's squared diagonal "
                                  f"(expected {expected:.4g})")
            expect_close(got[0, 0], expected, f"your DIoU of {what} {first} and {second}", atol=1e-5)

    def against_torchvision(fn):
        generator = torch.Generator().manual_seed(3)
        for n, m, dtype in ((6, 4, torch.float32), (1, 5, torch.float32), (3, 1, torch.float64),
                            (7, 7, torch.float64)):
            boxes_a = _random_boxes(n, generator).to(dtype)
            boxes_b = (_random_boxes(m, generator) + 20).to(dtype)
            _expect_diou(fn, boxes_a, boxes_b, f"{n} random {dtype} boxes against {m}")

    def empty(fn):
        some = _random_boxes(3, torch.Generator().manual_seed(4))
        _expect_diou(fn, torch.zeros(0, 4), some, "no boxes against 3 boxes")
        _expect_diou(fn, some, torch.zeros(0, 4), "3 boxes against no boxes")

    return run_checks("distance_box_iou", fn, [("hand-made pairs", special_pairs),
                                               ("random boxes vs torchvision, values and gradients",
                                                against_torchvision), ("empty sets", empty)])


# --- focal loss -----------------------------------------------------------------------------------------

def _expect_focal(fn, logits: torch.Tensor, targets: torch.Tensor, options: dict, what: str) -> None:
    """Element-wise values and gradients equal torchvision.ops.sigmoid_focal_loss(reduction="none")'s."""
    x = logits.clone().requires_grad_(True)
    got = call(fn, x, targets, **options)
    expect_float_tensor(got, f"{what}: the loss")
    expect_shape(got, tuple(logits.shape), f"{what}: the loss (one value per element, no reduction)")
    reference = logits.detach().double().requires_grad_(True)
    expected = ops.sigmoid_focal_loss(reference, targets.double(), reduction="none", **options)
    if not close(got, expected.detach(), atol=1e-6, rtol=1e-4):
        alpha, gamma = options.get("alpha", 0.25), options.get("gamma", 2.0)
        swapped = ops.sigmoid_focal_loss(logits.double(), targets.double(), alpha=1 - alpha, gamma=gamma,
                                         reduction="none")
        if alpha != 0.5 and close(got, swapped, atol=1e-6, rtol=1e-4):
            raise CheckFailed(f"{what}: α weighs the wrong class: the positives (target 1) get α = {alpha}, "
                              f"the negatives 1 − α = {1 - alpha:g}")
        expect_close(got, expected.detach(), f"{what}: the loss", atol=1e-6, rtol=1e-4)
    if got.numel() == 0:
        return
    if not got.requires_grad:
        raise CheckFailed(f"{what}: the loss is detached from the logits; compute it with torch operations")
    weights = torch.rand(got.shape, generator=torch.Generator().manual_seed(9))
    (got * weights.to(got.dtype)).sum().backward()
    (expected * weights.double()).sum().backward()
    if x.grad is None:
        raise CheckFailed(f"{what}: backward() did not reach the logits")
    expect_close(x.grad, reference.grad, f"{what}: the gradient w.r.t. the logits", atol=1e-6, rtol=1e-3)


def check_sigmoid_focal_loss(fn):
    """``fn(logits, targets, alpha=0.25, gamma=2.0) -> element-wise loss``, as torchvision's sigmoid_focal_loss."""
    def hand_made(fn):
        logits = torch.tensor([[2.0, -1.0], [0.5, -3.0]])
        targets = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
        _expect_focal(fn, logits, targets, {}, "the defaults α = 0.25, γ = 2")
        _expect_focal(fn, logits, targets, {"alpha": 0.5, "gamma": 0.0}, "γ = 0, α = 0.5 (half the BCE)")
        zero, one = torch.tensor([0.0]), torch.tensor([1.0])
        expect_close(call(fn, zero, one), 0.25 * 0.25 * math.log(2), "for logit 0 and target 1 (p = 0.5), "
                     "α·(1 − p)²·log 2 — your loss", atol=1e-7)
        expect_close(call(fn, zero, zero), 0.75 * 0.25 * math.log(2), "for logit 0 and target 0, "
                     "(1 − α)·p²·log 2 — your loss", atol=1e-7)

    def random(fn):
        generator = torch.Generator().manual_seed(6)
        for shape, options, dtype in (((8, 5), {}, torch.float32), ((4, 3, 6, 6), {"gamma": 1.5}, torch.float32),
                                      ((10,), {"alpha": 0.9, "gamma": 3.0}, torch.float64),
                                      ((6, 2), {"alpha": 0.0}, torch.float64), ((3, 4), {"gamma": 0.5}, torch.float32)):
            logits = torch.randn(shape, generator=generator, dtype=dtype) * 3
            targets = (torch.rand(shape, generator=generator) < 0.3).to(dtype)
            _expect_focal(fn, logits, targets, options, f"random {dtype} logits of shape {shape}, {options or 'defaults'}")

    def extreme_and_empty(fn):
        logits = torch.tensor([[-200.0, 200.0, 40.0], [200.0, -200.0, -40.0]])
        targets = torch.tensor([[1.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
        _expect_focal(fn, logits, targets, {}, "logits of ±200 (a wrong answer with huge confidence)")
        _expect_focal(fn, torch.zeros(0, 3), torch.zeros(0, 3), {}, "an empty batch of shape (0, 3)")

    return run_checks("sigmoid_focal_loss", fn, [("hand-made values", hand_made),
                                                 ("random shapes and options vs torchvision, with gradients", random),
                                                 ("huge logits and an empty batch", extreme_and_empty)])
