"""Checkers for chapter 04's exercises (Dice coefficient, per-class IoU, a U-Net block).

Dice and IoU are compared with independent references (torchmetrics for IoU) on masks of unequal size,
one-sided empty masks and classes that never occur. The U-Net block is checked by behaviour: the
student's module gets known weights and BatchNorm statistics, and its outputs in train and eval mode
(and the running statistics it updates) must match (conv → BN → ReLU) × 2 computed with torch.nn.functional.
"""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics.classification import MulticlassJaccardIndex

from ..checks import (
    CheckFailed,
    as_double,
    call,
    close,
    expect_close,
    expect_float_tensor,
    expect_shape,
    expect_type,
    run_checks,
)


def _reference_dice(predicted: torch.Tensor, true: torch.Tensor) -> float:
    a, b = int(predicted.sum()), int(true.sum())
    return 1.0 if a + b == 0 else 2 * int((predicted & true).sum()) / (a + b)


def check_dice_coefficient(fn):
    """``fn(predicted_mask, true_mask) -> float``: 2|A∩B| / (|A| + |B|) of two boolean masks (1.0 if both empty)."""
    def hand_made(fn):
        square = torch.zeros(8, 8, dtype=torch.bool)
        square[2:6, 2:6] = True  # 16 pixels
        shifted = torch.roll(square, shifts=2, dims=1)  # overlaps square on 8 pixels
        small = torch.zeros(8, 8, dtype=torch.bool)
        small[3:5, 3:5] = True  # 4 pixels, all inside square
        empty = torch.zeros(8, 8, dtype=torch.bool)
        cases = [("identical masks", square, square, 1.0),
                 ("disjoint masks", square, torch.roll(square, 4, dims=0), 0.0),
                 ("half-overlapping masks", square, shifted, 2 * 8 / 32),
                 ("two empty masks", empty, empty, 1.0),
                 ("a 16-pixel prediction around a 4-pixel object", square, small, 2 * 4 / 20),
                 ("a 4-pixel prediction inside a 16-pixel object", small, square, 2 * 4 / 20),
                 ("an empty prediction of a 16-pixel object (a missed object)", empty, square, 0.0),
                 ("a 16-pixel prediction where there is no object", square, empty, 0.0),
                 ("one predicted pixel where there is no object", empty | (torch.arange(64).reshape(8, 8) == 9),
                  empty, 0.0)]
        for what, predicted, true, expected in cases:
            got = call(fn, predicted, true)
            expect_type(got, float, "the Dice coefficient")
            if not abs(got - expected) <= 1e-6:  # NaN fails too
                a, b, both = int(predicted.sum()), int(true.sum()), int((predicted & true).sum())
                hint = ""
                if abs(got - (1 - expected)) < 1e-6 and expected not in (0.5,) and a + b:
                    hint = " — that is the Dice *loss* (1 − Dice); return the coefficient"
                elif b and a != b and abs(got - both / b) < 1e-6:
                    hint = " — that is recall |A∩B| / |B|: Dice divides 2|A∩B| by |A| + |B|"
                elif a and a != b and abs(got - both / a) < 1e-6:
                    hint = " — that is precision |A∩B| / |A|: Dice divides 2|A∩B| by |A| + |B|"
                elif both and abs(got - both / (a + b - both)) < 1e-6:
                    hint = " — that is IoU: Dice divides 2|A∩B| by |A| + |B|"
                elif both and abs(got - both / (a + b)) < 1e-6:
                    hint = " — the overlap counts twice in the numerator"
                elif expected == 0 and got == 1 and not both:
                    hint = " — 1.0 is only for two empty masks; one empty mask and one non-empty share nothing"
                raise CheckFailed(f"your Dice of {what} is {got:.4f}, expected {expected:.4f}{hint}")

    def random(fn):
        generator = torch.Generator().manual_seed(0)
        for shape, p, q in (((4, 9, 7), 0.3, 0.6), ((20,), 0.5, 0.1), ((2, 5, 5), 0.9, 0.9)):
            predicted = torch.rand(shape, generator=generator) < p
            true = torch.rand(shape, generator=generator) < q
            got = call(fn, predicted, true)
            expect_type(got, float, "the Dice coefficient")
            expect_close(got, _reference_dice(predicted, true), f"Dice of random masks of shape {shape}", atol=1e-6)

    return run_checks("dice_coefficient", fn, [("hand-made masks", hand_made), ("random masks of any shape", random)])


def _expect_iou(fn, predictions, targets, num_classes: int, what: str) -> None:
    got = call(fn, predictions, targets, num_classes)
    expect_float_tensor(got, f"the per-class IoU {what}")
    if got.shape != (num_classes,):
        raise CheckFailed(f"{what} the answer has shape {tuple(got.shape)}, expected ({num_classes},): one IoU for "
                          "each of the num_classes classes, including classes that never occur")
    expected = MulticlassJaccardIndex(num_classes, average="none")(predictions, targets).double()
    present = torch.bincount(torch.cat([predictions.flatten(), targets.flatten()]), minlength=num_classes) > 0
    got = as_double(got)
    # A class in neither map has IoU 0/0: NaN (undefined) and torchmetrics' 0 are both accepted.
    if not (got[~present].isnan() | (got[~present] == 0)).all():
        raise CheckFailed(f"{what}: classes that occur in neither map have IoU 0/0 — return NaN or 0 for them, "
                          f"got {got[~present].tolist()}")
    if close(got[present], expected[present]):
        return
    per_image = torch.stack([MulticlassJaccardIndex(num_classes, average="none")(p, t)
                             for p, t in zip(predictions, targets)]).mean(0).double()
    if close(got[present], per_image[present]):
        raise CheckFailed("you average per-image IoUs; count TP, FP and FN over the whole set first")
    expect_close(got[present], expected[present], f"the per-class IoU {what}")


def check_per_class_iou(fn):
    """``fn(predictions, targets, num_classes) -> tensor (C,)``: dataset-level IoU per class."""
    def against_torchmetrics(fn):
        generator = torch.Generator().manual_seed(0)
        targets = torch.randint(0, 4, (6, 16, 16), generator=generator)
        predictions = torch.where(torch.rand(6, 16, 16, generator=generator) < 0.6, targets,
                                  torch.randint(0, 4, (6, 16, 16), generator=generator))
        _expect_iou(fn, predictions, targets, 4, "for 4 classes")

    def absent_classes(fn):
        generator = torch.Generator().manual_seed(1)
        targets = torch.randint(0, 3, (3, 8, 8), generator=generator)  # classes 0..2 only
        predictions = torch.where(torch.rand(3, 8, 8, generator=generator) < 0.7, targets,
                                  torch.randint(0, 5, (3, 8, 8), generator=generator))  # some wrongly 3 or 4
        _expect_iou(fn, predictions, targets, 7, "with num_classes=7 when only classes 0..4 occur")
        one = torch.zeros(1, 2, 3, dtype=torch.long)
        _expect_iou(fn, one, one, 3, "for maps that are all class 0 (num_classes=3)")

    return run_checks("per_class_iou", fn, [("random label maps vs torchmetrics", against_torchmetrics),
                                            ("classes that never occur", absent_classes)])


def _randomise(convs, norms, generator) -> None:
    with torch.no_grad():
        for conv in convs:
            conv.weight.copy_(torch.randn(conv.weight.shape, generator=generator) * 0.4)
        for norm in norms:
            norm.weight.copy_(torch.rand(norm.weight.shape, generator=generator) + 0.5)
            norm.bias.copy_(torch.randn(norm.bias.shape, generator=generator) * 0.3)
            norm.running_mean.copy_(torch.randn(norm.running_mean.shape, generator=generator) * 0.3)
            norm.running_var.copy_(torch.rand(norm.running_var.shape, generator=generator) + 0.5)


def _reference_block(x, convs, norms, training: bool, relus=(True, True), use_norm=(True, True)):
    """(conv → BN → ReLU) × 2 with the given layers' parameters; in training mode on copies of the stats."""
    stats = []
    for conv, norm, relu, normed in zip(convs, norms, relus, use_norm):
        x = F.conv2d(x, conv.weight.detach(), padding=1)
        mean, var = norm.running_mean.clone(), norm.running_var.clone()
        if normed:
            x = F.batch_norm(x, mean, var, norm.weight.detach(), norm.bias.detach(), training=training,
                             momentum=norm.momentum, eps=norm.eps)
        stats.append((mean, var))
        x = F.relu(x) if relu else x
    return x, stats


def _orders(layers, first_in_channels):
    """Candidate orders of the two layers: by input channels when that tells them apart, else both."""
    return [p for p in itertools.permutations(layers)
            if first_in_channels is None or p[0].in_channels == first_in_channels]


def _check_block_behaviour(fn, c_in: int, c_out: int, seed: int) -> None:
    block = fn(c_in, c_out)
    expect_type(block, nn.Module, "the block")
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(3, c_in, 9, 11, generator=generator)
    what = f"the block for {c_in} → {c_out} channels"
    out = block.train()(x)
    expect_shape(out, (3, c_out, 9, 11), f"the output of {what} for a 3×{c_in}×9×11 input (pad the 3×3 "
                                         "convolutions by 1 to keep 9×11)")
    convs = [m for m in block.modules() if isinstance(m, nn.Conv2d)]
    norms = [m for m in block.modules() if isinstance(m, nn.BatchNorm2d)]
    if len(convs) != 2 or any(c.kernel_size != (3, 3) for c in convs):
        raise CheckFailed(f"expected two 3×3 convolutions, found kernels {[c.kernel_size for c in convs]}")
    if len(norms) != 2:
        raise CheckFailed(f"expected two BatchNorm2d layers (one after each convolution), found {len(norms)}")
    if any(c.bias is not None for c in convs):
        raise CheckFailed("drop the convolutions' biases (bias=False): BatchNorm's shift makes them redundant")
    if any(c.padding_mode != "zeros" or c.stride != (1, 1) or c.dilation != (1, 1) or c.groups != 1 for c in convs):
        raise CheckFailed("use plain 3×3 convolutions: stride 1, zero padding 1, no dilation or groups")
    _randomise(convs, norms, generator)
    first_in = c_in if c_in != c_out else None
    candidates = [(cs, ns) for cs in _orders(convs, first_in) for ns in itertools.permutations(norms)]
    before = [(n.running_mean.clone(), n.running_var.clone()) for n in norms]
    with torch.no_grad():
        eval_out = block.eval()(x)
        train_out = block.train()(x)
    after = [(n.running_mean.clone(), n.running_var.clone()) for n in norms]
    for cs, ns in candidates:
        for n, (mean, var) in zip(norms, before):  # the references start from the statistics as they were
            n.running_mean.copy_(mean)
            n.running_var.copy_(var)
        expected_eval, _ = _reference_block(x, cs, ns, training=False)
        expected_train, stats = _reference_block(x, cs, ns, training=True)
        updated = [after[norms.index(n)] for n in ns]
        if (close(eval_out, expected_eval, atol=1e-4) and close(train_out, expected_train, atol=1e-4)
                and all(close(a[0], s[0]) and close(a[1], s[1]) for a, s in zip(updated, stats))):
            return
    if any(torch.equal(b[0], a[0]) for b, a in zip(before, after)):
        raise CheckFailed(f"{what}: a BatchNorm2d is built but never used in forward — its running statistics "
                          "did not change in training mode")
    cs, ns = candidates[0]
    for n, (mean, var) in zip(norms, before):
        n.running_mean.copy_(mean)
        n.running_var.copy_(var)
    if close(eval_out, _reference_block(x, cs, ns, training=False, relus=(False, True))[0], atol=1e-4):
        raise CheckFailed(f"{what}: the ReLU after the first BatchNorm is missing (conv → BN → ReLU, twice)")
    if close(eval_out, _reference_block(x, cs, ns, training=False, relus=(True, False))[0], atol=1e-4):
        raise CheckFailed(f"{what}: the block should end with a ReLU (conv → BN → ReLU, twice)")
    raise CheckFailed(f"{what}: with the same weights, the outputs differ from (3×3 conv → BatchNorm → ReLU) × 2 "
                      f"in {'eval' if not close(eval_out, _reference_block(x, cs, ns, False)[0], atol=1e-4) else 'train'}"
                      " mode — check the order of the layers")


def check_unet_block(fn):
    """``fn(in_channels, out_channels) -> nn.Module``: (3×3 conv → BatchNorm → ReLU) × 2, size preserved."""
    def widening(fn):
        _check_block_behaviour(fn, 5, 12, seed=0)

    def same_width(fn):
        _check_block_behaviour(fn, 6, 6, seed=1)

    def parameters(fn):
        block = fn(5, 12)
        expected = 9 * 5 * 12 + 9 * 12 * 12 + 4 * 12  # convs without bias (BatchNorm has its own) + BN weights
        got = sum(p.numel() for p in block.parameters())
        if got != expected:
            raise CheckFailed(f"the block has {got:,} parameters, expected {expected:,}")

    return run_checks("unet_block", fn, [("5 → 12 channels, same weights as the reference, train and eval mode",
                                          widening), ("6 → 6 channels", same_width), ("parameter count", parameters)])
