"""Checkers for chapter 04's exercises (Dice coefficient, per-class IoU, a U-Net block)."""

from __future__ import annotations

import torch
from torch import nn
from torchmetrics.classification import MulticlassJaccardIndex

from ..checks import CheckFailed, expect_close, expect_shape, expect_type, run_checks


def check_dice_coefficient(fn):
    """``fn(predicted_mask, true_mask) -> float``: 2|A∩B| / (|A| + |B|) of two boolean masks (1.0 if both empty)."""
    def hand_made(fn):
        square = torch.zeros(8, 8, dtype=torch.bool)
        square[2:6, 2:6] = True  # 16 pixels
        shifted = torch.roll(square, shifts=2, dims=1)  # overlaps square on 8 pixels
        cases = [("identical masks", square, square, 1.0), ("disjoint masks", square, torch.roll(square, 4, dims=0), 0.0),
                 ("half-overlapping masks", square, shifted, 2 * 8 / 32), ("two empty masks", ~square & square, ~square & square, 1.0)]
        for what, predicted, true, expected in cases:
            got = fn(predicted.clone(), true.clone())
            expect_type(got, float, "the Dice coefficient")
            if abs(got - expected) > 1e-6:
                hint = ""
                if abs(got - (1 - expected)) < 1e-6 and expected not in (0.5,):
                    hint = " — that is the Dice *loss* (1 − Dice); return the coefficient"
                elif what == "half-overlapping masks" and abs(got - 8 / 24) < 1e-6:
                    hint = " — that is IoU: Dice divides 2|A∩B| by |A| + |B|"
                elif what == "half-overlapping masks" and abs(got - 8 / 32) < 1e-6:
                    hint = " — the overlap counts twice in the numerator"
                raise CheckFailed(f"your Dice of {what} is {got:.4f}, expected {expected:.4f}{hint}")

    return run_checks("dice_coefficient", fn, [("hand-made masks", hand_made)])


def check_per_class_iou(fn):
    """``fn(predictions, targets, num_classes) -> tensor (C,)``: dataset-level IoU per class."""
    def against_torchmetrics(fn):
        generator = torch.Generator().manual_seed(0)
        targets = torch.randint(0, 4, (6, 16, 16), generator=generator)
        predictions = torch.where(torch.rand(6, 16, 16, generator=generator) < 0.6, targets,
                                  torch.randint(0, 4, (6, 16, 16), generator=generator))
        got = fn(predictions.clone(), targets.clone(), 4)
        expect_shape(got, (4,), "the per-class IoU of 4 classes")
        expected = MulticlassJaccardIndex(4, average="none")(predictions, targets)
        try:
            expect_close(got.float(), expected, "the per-class IoU")
        except CheckFailed:
            per_image = torch.stack([MulticlassJaccardIndex(4, average="none")(p, t) for p, t in zip(predictions, targets)]).mean(0)
            if torch.allclose(got.float(), per_image, atol=1e-5):
                raise CheckFailed("you average per-image IoUs; count TP, FP and FN over the whole set first") from None
            raise

    return run_checks("per_class_iou", fn, [("random label maps vs torchmetrics", against_torchmetrics)])


def check_unet_block(fn):
    """``fn(in_channels, out_channels) -> nn.Module``: (3×3 conv → BatchNorm → ReLU) × 2, size preserved."""
    def structure(fn):
        block = fn(5, 12)
        expect_type(block, nn.Module, "the block")
        x = torch.randn(2, 5, 17, 23)
        out = block.train()(x)
        expect_shape(out, (2, 12, 17, 23), "the output for a 2×5×17×23 input")
        convs = [m for m in block.modules() if isinstance(m, nn.Conv2d)]
        if len(convs) != 2 or any(c.kernel_size != (3, 3) for c in convs):
            raise CheckFailed(f"expected two 3×3 convolutions, found kernels {[c.kernel_size for c in convs]}")
        if sum(isinstance(m, nn.BatchNorm2d) for m in block.modules()) != 2:
            raise CheckFailed("each convolution should be followed by a BatchNorm2d")
        if (out < 0).any():
            raise CheckFailed("the block should end with a ReLU: some outputs are negative")
        expected = 9 * 5 * 12 + 9 * 12 * 12 + 4 * 12  # convs without bias (BatchNorm has its own) + BN weights
        got = sum(p.numel() for p in block.parameters())
        if got != expected:
            hint = " — drop the convolutions' biases (bias=False): BatchNorm's shift makes them redundant" \
                if got == expected + 24 else ""
            raise CheckFailed(f"the block has {got:,} parameters, expected {expected:,}{hint}")

    return run_checks("unet_block", fn, [("shape, layers and parameters", structure)])
