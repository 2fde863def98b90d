"""Checkers for chapter 04's exercises (the Dice loss's gradient, instances from a semantic map, a U-Net block).

The hand-derived Dice gradient is compared with autograd's in float64 on hand-made cases (perfect, absent
class, eps = 0) and random shapes and dtypes. The instance map is compared with scipy.ndimage.label run
on each class (4-connectivity), up to a renumbering of the instances. The U-Net block is checked by behaviour: the
student's module gets known weights and BatchNorm statistics, and its outputs in train and eval mode
(and the running statistics it updates) must match (conv → BN → ReLU) × 2 computed with torch.nn.functional.
"""

from __future__ import annotations

import itertools

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage
from torch import nn

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


def _reference_dice_gradient(probabilities, targets, eps: float) -> torch.Tensor:
    """∂(1 − soft Dice)/∂p by autograd, in float64: an independent reference for the hand-derived formula."""
    p = as_double(probabilities).requires_grad_(True)
    g = as_double(targets)
    loss = 1 - (2 * (p * g).sum() + eps) / (p.sum() + g.sum() + eps)
    gradient, = torch.autograd.grad(loss, p)
    return gradient


def _expect_dice_gradient(fn, probabilities, targets, eps, what: str) -> None:
    got = call(fn, probabilities, targets) if eps is None else call(fn, probabilities, targets, eps)
    eps = 1.0 if eps is None else eps
    expected = _reference_dice_gradient(probabilities, targets, eps)
    expect_float_tensor(got, f"the gradient {what}")
    expect_shape(got, tuple(probabilities.shape), f"the gradient {what} (one entry per probability)")
    scale = float(expected.abs().max())
    if close(got, expected, atol=1e-5 * scale, rtol=1e-4):
        return
    g = as_double(targets)
    total = as_double(probabilities).sum() + g.sum() + eps
    hint = ""
    if close(got, -expected, atol=1e-5 * scale, rtol=1e-4):
        hint = " — that is the gradient of the Dice coefficient; the loss is 1 − Dice, so the sign flips"
    elif close(got, -2 * g / total, atol=1e-5 * scale, rtol=1e-4):
        hint = (" — the denominator Σp + Σg + eps depends on p too: the quotient rule adds a term that is the same "
                "for every pixel")
    try:
        expect_close(got, expected, f"the gradient {what}", atol=1e-5 * scale, rtol=1e-4)
    except CheckFailed as failure:
        raise CheckFailed(f"{failure}{hint}") from None


def check_dice_loss_gradient(fn):
    """``fn(probabilities, targets, eps=1.0) -> tensor``: ∂/∂p of 1 − (2Σpg + eps) / (Σp + Σg + eps), by hand."""
    def hand_made(fn):
        p = torch.tensor([0.9, 0.2, 0.6, 0.1])
        g = torch.tensor([True, False, True, False])
        _expect_dice_gradient(fn, p, g, None, "for p = [0.9, 0.2, 0.6, 0.1], g = [1, 0, 1, 0] (default eps = 1)")
        _expect_dice_gradient(fn, p, g, 0.0, "for the same p and g with eps = 0")
        _expect_dice_gradient(fn, g.float(), g, 1.0, "of a perfect prediction p = g")
        _expect_dice_gradient(fn, p, torch.zeros(4, dtype=torch.bool), 1.0,
                              "when the class is absent (g all 0): every pixel is pushed down equally")
        _expect_dice_gradient(fn, torch.zeros(3, 2), torch.ones(3, 2, dtype=torch.bool), 0.5,
                              "for an all-zero prediction of an all-foreground 3×2 map, eps = 0.5")
        _expect_dice_gradient(fn, torch.tensor([0.3]), torch.tensor([1.0]), 2.0, "of a single pixel, eps = 2")

    def random(fn):
        generator = torch.Generator().manual_seed(0)
        for shape, share, eps, dtype, as_bool in (((2, 3, 5, 5), 0.3, 1.0, torch.float32, True),
                                                  ((17,), 0.6, 1e-6, torch.float64, True),
                                                  ((4, 9, 7), 0.05, 0.25, torch.float64, False),
                                                  ((8, 8), 0.5, 3.0, torch.float32, False)):
            probabilities = torch.rand(shape, generator=generator, dtype=dtype)
            targets = torch.rand(shape, generator=generator) < share
            targets = targets if as_bool else targets.to(dtype)
            _expect_dice_gradient(fn, probabilities, targets, eps,
                                  f"for random {dtype} probabilities of shape {shape}, "
                                  f"{'boolean' if as_bool else '0/1 float'} targets, eps = {eps:g}")

    return run_checks("dice_loss_gradient", fn, [("hand-made cases vs autograd", hand_made),
                                                 ("random shapes, dtypes and eps vs autograd", random)])


def _reference_instances(label_map) -> tuple[np.ndarray, int]:
    """scipy.ndimage.label on each class's mask (4-connectivity), numbered one after another."""
    labels = np.asarray(label_map)
    instances, count = np.zeros(labels.shape, dtype=np.int64), 0
    for cls in sorted(set(labels.ravel().tolist()) - {0}):
        regions, found = ndimage.label(labels == cls, structure=[[0, 1, 0], [1, 1, 1], [0, 1, 0]])
        instances = np.where(regions > 0, regions + count, instances)
        count += found
    return instances, count


def _expect_instances(fn, label_map: torch.Tensor, what: str) -> None:
    got = call(fn, label_map)
    if not isinstance(got, (torch.Tensor, np.ndarray)):
        raise CheckFailed(f"{what}: return a tensor (or NumPy array) of instance ids, got {type(got).__name__}")
    got = got.detach().cpu().numpy() if isinstance(got, torch.Tensor) else got
    if got.shape != tuple(label_map.shape):
        raise CheckFailed(f"{what}: the instance map has shape {got.shape}, expected {tuple(label_map.shape)}")
    if got.dtype.kind not in "iu":
        raise CheckFailed(f"{what}: instance ids should be integers, got dtype {got.dtype}")
    labels = label_map.numpy()
    expected, count = _reference_instances(labels)
    if (got[labels == 0] != 0).any():
        raise CheckFailed(f"{what}: background pixels (class 0) must get instance id 0")
    ids = sorted(set(got[labels != 0].tolist()))
    if len(ids) != count:
        hint = ""
        if count and _same_partition(got, ndimage.label(labels != 0)[0], labels):
            hint = " — touching regions of different classes got one id, but they are separate instances"
        elif count and _same_partition(got, _reference_instances_8(labels), labels):
            hint = " — pixels that touch only at a corner belong to different instances (4-connectivity)"
        elif len(ids) < count and len(set(zip(expected[labels != 0].tolist(), got[labels != 0].tolist()))) == count:
            hint = " — regions of different classes share ids: keep counting from where the previous class stopped"
        raise CheckFailed(f"{what}: you found {len(ids)} instances, expected {count}{hint}")
    if ids != list(range(1, count + 1)):
        raise CheckFailed(f"{what}: number the {count} instances 1…{count} (each id once), got ids {ids[:8]}")
    if not _same_partition(got, expected, labels):
        raise CheckFailed(f"{what}: your instances do not match the connected regions of each class — a region got "
                          "two ids, or two regions share one")


def _same_partition(got: np.ndarray, reference: np.ndarray, labels: np.ndarray) -> bool:
    """The same regions of foreground pixels, whatever the numbering: a one-to-one map between the ids."""
    pairs = set(zip(reference[labels != 0].tolist(), got[labels != 0].tolist()))
    return len(pairs) == len({a for a, _ in pairs}) == len({b for _, b in pairs})


def _reference_instances_8(labels: np.ndarray) -> np.ndarray:
    """Instances with 8-connectivity (regions that touch at a corner merge): a typical mistake's answer."""
    instances, count = np.zeros(labels.shape, dtype=np.int64), 0
    for cls in sorted(set(labels.ravel().tolist()) - {0}):
        regions, found = ndimage.label(labels == cls, structure=np.ones((3, 3)))
        instances = np.where(regions > 0, regions + count, instances)
        count += found
    return instances


def check_semantic_to_instances(fn):
    """``fn(label_map) -> H×W ids``: each 4-connected region of one non-background class is an instance 1…K."""
    def hand_made(fn):
        separate = torch.zeros(4, 9, dtype=torch.long)
        separate[1:3, 1:3], separate[1:3, 5:8] = 1, 2
        _expect_instances(fn, separate, "two separate squares of classes 1 and 2")
        touching = torch.zeros(6, 8, dtype=torch.long)
        touching[1:5, 1:4], touching[1:5, 4:7] = 1, 2  # two squares of different classes side by side
        _expect_instances(fn, touching, "two touching squares of classes 1 and 2")
        same = touching.clamp(max=1)
        _expect_instances(fn, same, "two touching squares of the same class (one region)")
        apart = torch.zeros(5, 9, dtype=torch.long)
        apart[1:3, 1:3], apart[2:4, 5:8] = 3, 3
        _expect_instances(fn, apart, "two separate squares of class 3")
        _expect_instances(fn, torch.eye(4, dtype=torch.long) * 2, "a diagonal line (pixels touching at corners)")
        ring = torch.full((7, 7), 1)
        ring[0, :], ring[:, 0] = 0, 0
        ring[2:5, 2:5] = torch.tensor([[0, 0, 0], [0, 2, 0], [0, 0, 0]])
        _expect_instances(fn, ring, "a ring of class 1 around a background hole with a class-2 dot")
        _expect_instances(fn, torch.zeros(4, 5, dtype=torch.long), "an all-background map (no instances)")
        _expect_instances(fn, torch.tensor([[7]]), "a 1×1 map of class 7")
        _expect_instances(fn, torch.tensor([[5, 5, 0, 9, 9, 0, 5]], dtype=torch.uint8),
                          "a 1×7 uint8 map with classes 5 and 9")

    def random(fn):
        generator = torch.Generator().manual_seed(0)
        for shape, n_classes, dtype in (((16, 16), 3, torch.long), ((9, 23), 5, torch.int32), ((12, 7), 2, torch.uint8)):
            coarse = torch.randint(0, n_classes, (shape[0] // 2 + 1, shape[1] // 2 + 1), generator=generator)
            blobs = coarse.repeat_interleave(2, 0).repeat_interleave(2, 1)[: shape[0], : shape[1]]
            speckle = torch.randint(0, n_classes, shape, generator=generator)
            label_map = torch.where(torch.rand(shape, generator=generator) < 0.15, speckle, blobs).to(dtype)
            _expect_instances(fn, label_map, f"a random {shape[0]}×{shape[1]} {dtype} map with {n_classes} classes")

    return run_checks("semantic_to_instances", fn, [("hand-made maps vs scipy.ndimage.label", hand_made),
                                                    ("random maps", random)])


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
