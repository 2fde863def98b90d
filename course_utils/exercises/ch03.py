"""Checkers for chapter 03's exercises (box IoU, greedy NMS, average precision)."""

from __future__ import annotations

import torch
from torchvision import ops

from ..checks import CheckFailed, call, expect_close, expect_shape, expect_type, run_checks


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


def _nms_cases():
    generator = torch.Generator().manual_seed(1)
    yield "random boxes", _random_boxes(60, generator), torch.rand(60, generator=generator), 0.5
    clustered = _random_boxes(30, generator, size=15.0)
    yield "overlapping boxes", clustered, torch.rand(30, generator=generator), 0.3
    yield "tied scores", clustered, torch.ones(30), 0.5
    yield "IoU exactly at the threshold", _boxes([[0, 0, 10, 10], [0, 0, 20, 10]]), torch.tensor([0.9, 0.8]), 0.5
    yield "no boxes", torch.zeros(0, 4), torch.zeros(0), 0.5
    yield "one box", _boxes([[1, 2, 3, 4]]), torch.tensor([0.3]), 0.5
    yield "float64 boxes", _random_boxes(20, generator, size=20.0).double(), torch.rand(20, generator=generator).double(), 0.4
    yield "threshold 0 (any overlap removes)", clustered, torch.rand(30, generator=generator), 0.0
    yield "threshold 0.95 (almost nothing removed)", clustered, torch.rand(30, generator=generator), 0.95


def check_nms(fn):
    """``fn(boxes, scores, iou_threshold) -> kept indices`` (int64, decreasing score), as torchvision.ops.nms."""
    def against_torchvision(fn):
        for what, boxes, scores, threshold in _nms_cases():
            got = call(fn, boxes, scores, threshold)
            expect_type(got, torch.Tensor, "the kept indices")
            expected = ops.nms(boxes, scores, threshold)
            if got.dtype != torch.int64:
                raise CheckFailed(f"return the kept indices as an int64 tensor, got {got.dtype}")
            if torch.equal(got, expected):
                continue
            if set(got.tolist()) == set(expected.tolist()) and "tied" in what:
                raise CheckFailed(f"{what}: you keep the right boxes but in another order — with equal scores, "
                                  "the lower index comes first (a stable sort)")
            if set(got.tolist()) == set(expected.tolist()):
                raise CheckFailed(f"{what}: you keep the right boxes but in the wrong order — return them by decreasing score")
            extra, missing = sorted(set(got.tolist()) - set(expected.tolist())), sorted(set(expected.tolist()) - set(got.tolist()))
            hint = (" — a box is removed only when its IoU is strictly greater than the threshold"
                    if what == "IoU exactly at the threshold" and len(got) < len(expected) else "")
            hint = hint or (" — with equal scores, keep the lower index first (a stable sort)"
                                    if "tied" in what and len(got) == len(expected) else "")
            raise CheckFailed(f"{what} (IoU threshold {threshold}): you keep {len(got)} boxes, torchvision keeps "
                              f"{len(expected)}; extra {extra[:5]}, missing {missing[:5]}{hint}")

    return run_checks("nms", fn, [("compared with torchvision.ops.nms", against_torchvision)])


def _reference_average_precision(scores, true_positive, n_true):
    order = torch.sort(scores, descending=True, stable=True).indices
    hits = true_positive[order].double().cumsum(0)
    precision, recall = hits / torch.arange(1, len(hits) + 1), hits / n_true
    envelope = torch.flip(torch.cummax(torch.flip(precision, [0]), 0).values, [0])
    return float((torch.diff(recall, prepend=torch.zeros(1, dtype=recall.dtype)) * envelope).sum())


def check_average_precision(fn):
    """``fn(scores, true_positive, n_ground_truth) -> float``: all-point interpolated AP."""
    def simple_lists(fn):
        cases = [("every detection correct, every object found", [0.9, 0.8, 0.7], [1, 1, 1], 3, 1.0),
                 ("no correct detection", [0.9, 0.8], [0, 0], 2, 0.0),
                 ("two of four objects found, ranked first", [0.9, 0.8], [1, 1], 4, 0.5),
                 ("a false positive ranked first", [0.9, 0.8], [0, 1], 1, 0.5),
                 ("one detection, correct, of two objects", [0.4], [1], 2, 0.5),
                 ("scores given in increasing order", [0.1, 0.5, 0.9], [0, 0, 1], 1, 1.0),
                 ("a hit after two misses", [0.9, 0.8, 0.7], [0, 0, 1], 1, 1 / 3)]
        for what, scores, flags, n_true, expected in cases:
            got = call(fn, torch.tensor(scores), torch.tensor(flags, dtype=torch.bool), n_true)
            expect_type(got, float, "AP")
            if not abs(got - expected) <= 1e-6:  # NaN fails too
                hint = " — recall is divided by the number of ground-truth objects, found or not" if (
                    "four" in what and abs(got - 1.0) < 1e-6) else ""
                raise CheckFailed(f"{what}: your AP is {got:.4f}, expected {expected:.4f}{hint}")

    def envelope_and_sorting(fn):
        generator = torch.Generator().manual_seed(2)
        for _ in range(20):
            n = int(torch.randint(1, 30, (1,), generator=generator))
            scores, flags = torch.rand(n, generator=generator), torch.rand(n, generator=generator) < 0.6
            n_true = int(flags.sum()) + int(torch.randint(0, 4, (1,), generator=generator))
            if n_true == 0:
                continue
            expected = _reference_average_precision(scores, flags, n_true)
            if n % 3 == 0:
                scores = scores.double()
            got = call(fn, scores, flags, n_true)
            expect_type(got, float, "AP")
            if not abs(got - expected) <= 1e-6:  # NaN fails too
                raise CheckFailed(f"for {n} detections in random score order your AP is {got:.4f}, expected "
                                  f"{expected:.4f} — sort by decreasing score first, and use the precision envelope "
                                  "(the best precision at this or any higher recall)")

    return run_checks("average_precision", fn, [("small lists", simple_lists), ("random lists", envelope_and_sorting)])
