"""Transfer exercises of chapters 00–03 (issue 19, point 3): ideas the notebooks did not show.

Each entry of ``TRANSFER_CASES``: the checker, its reference solution, right answers written in other styles
(loops vs vectorised, NumPy vs torch, float64), and at least three plausible wrong answers it must reject.
tests/test_exercises.py judges them all; this file holds the cases and its own extra tests.
"""

import copy
import math

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from skimage import data as skdata
from skimage.filters import threshold_otsu
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval
from torchvision import ops

from course_utils.exercises import ch00, ch01, ch02, ch03
from solutions import ch00 as solution00
from solutions import ch01 as solution01
from solutions import ch02 as solution02
from solutions import ch03 as solution03

# --- chapter 00: label-smoothed cross-entropy -----------------------------------------------------------


def _smoothing_soft_targets(logits, labels, smoothing=0.1):
    """Build the smoothed target distribution and use F.cross_entropy's soft-target form."""
    classes = logits.shape[1]
    targets = torch.full_like(logits, smoothing / classes)
    targets = targets + (1 - smoothing) * F.one_hot(labels, classes).to(logits.dtype)
    return F.cross_entropy(logits, targets)


def _smoothing_loops_float64(logits, labels, smoothing=0.1):
    rows = []
    for row, label in zip(logits.double(), labels.tolist()):
        log_p = row - torch.logsumexp(row, 0)
        rows.append(-(1 - smoothing) * log_p[label] - smoothing * log_p.mean())
    return torch.stack(rows).mean()


def _smoothing_other_classes(logits, labels, smoothing=0.1):
    classes = logits.shape[1]
    one_hot = F.one_hot(labels, classes).to(logits.dtype)
    targets = one_hot * (1 - smoothing) + (1 - one_hot) * smoothing / (classes - 1)
    return -(targets * torch.log_softmax(logits, 1)).sum(1).mean()


def _smoothing_naive_softmax(logits, labels, smoothing=0.1):
    probabilities = logits.exp() / logits.exp().sum(1, keepdim=True)  # overflows for large logits
    log_p = probabilities.log()
    return ((1 - smoothing) * -log_p.gather(1, labels[:, None]).squeeze(1) - smoothing * log_p.mean(1)).mean()


# --- chapter 01: Otsu's threshold -----------------------------------------------------------------------

def _otsu_loops(image):
    """Python loops over every t, with the classes' weights and means recomputed each time (float64)."""
    histogram = np.bincount(image.ravel(), minlength=256)
    best, best_t = -1.0, 0
    for t in range(256):
        dark, bright = histogram[: t + 1], histogram[t + 1:]
        if dark.sum() == 0 or bright.sum() == 0:
            continue
        mean_dark = (dark * np.arange(t + 1)).sum() / dark.sum()
        mean_bright = (bright * np.arange(t + 1, 256)).sum() / bright.sum()
        variance = dark.sum() / image.size * bright.sum() / image.size * (mean_dark - mean_bright) ** 2
        if variance > best:
            best, best_t = variance, t
    return best_t


def _otsu_min_within(image):
    """Minimising the within-class variance is equivalent (σ² = σ²_within + σ²_between)."""
    pixels = image.ravel().astype(np.float64)
    scores = [((pixels[pixels <= t].var() * (pixels <= t).sum() + pixels[pixels > t].var() * (pixels > t).sum()), t)
              for t in np.unique(image)[:-1]]
    return int(min(scores)[1])


def _otsu_last_maximum(image):
    histogram = np.bincount(image.ravel(), minlength=256).astype(np.float64)
    count = np.cumsum(histogram)
    level_sum = np.cumsum(histogram * np.arange(256))
    with np.errstate(divide="ignore", invalid="ignore"):
        between = count * (image.size - count) * (level_sum / count - (level_sum[-1] - level_sum)
                                                  / (image.size - count)) ** 2
    between = np.nan_to_num(between, nan=-1.0)
    return int(255 - np.argmax(between[::-1]))  # the last of tied maxima


def _otsu_unweighted(image):
    """Only the distance between the class means, not weighted by the class sizes."""
    levels = np.unique(image)
    return int(max(levels[:-1], key=lambda t: image[image > t].mean() - image[image <= t].mean()))


# --- chapter 02: transposed convolutions and BatchNorm folding ------------------------------------------

def _transpose_size_by_layer(size, kernel, stride=1, padding=0, output_padding=0, dilation=1):
    layer = nn.ConvTranspose1d(1, 1, kernel, stride, padding, output_padding, dilation=dilation)
    return np.int64(layer(torch.zeros(1, 1, size)).shape[-1])


def _fold_by_hand_float64(conv, bn):
    """A new nn.Conv2d built from the settings, the arithmetic done in float64."""
    fused = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                      conv.dilation, conv.groups, bias=True, dtype=conv.weight.dtype)
    weight = bn.weight.double() if bn.affine else 1.0
    shift = bn.bias.double() if bn.affine else 0.0
    scale = weight / (bn.running_var.double() + bn.eps).sqrt()
    bias = conv.bias.double() if conv.bias is not None else 0.0
    with torch.no_grad():
        fused.weight.copy_(conv.weight.double() * scale.reshape(-1, 1, 1, 1))
        fused.bias.copy_((bias - bn.running_mean.double()) * scale + shift)
    return fused


def _fold_in_place(conv, bn):
    scale = (bn.weight if bn.affine else 1) / (bn.running_var + bn.eps).sqrt()
    with torch.no_grad():
        conv.weight.mul_(scale.reshape(-1, 1, 1, 1))
    bias = (conv.bias if conv.bias is not None else 0) - bn.running_mean
    conv.bias = nn.Parameter((bias * scale + (bn.bias if bn.affine else 0)).detach())
    return conv


def _fold_without_eps(conv, bn):
    fused = copy.deepcopy(conv)
    scale = (bn.weight if bn.affine else torch.ones_like(bn.running_var)) / bn.running_var.sqrt()
    bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
    fused.weight = nn.Parameter((conv.weight * scale[:, None, None, None]).detach())
    fused.bias = nn.Parameter((bias * scale + (bn.bias if bn.affine else 0) - bn.running_mean * scale).detach())
    return fused


def _fold_ignoring_conv_bias(conv, bn):
    return solution02.fold_batchnorm(nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride,
                                               conv.padding, conv.dilation, conv.groups, bias=False,
                                               dtype=conv.weight.dtype).requires_grad_(False).
                                     __setattr__("weight", conv.weight) or _without_bias(conv), bn)


def _without_bias(conv):
    copied = copy.deepcopy(conv)
    copied.bias = None
    return copied


def _fold_scale_on_input_channels(conv, bn):
    fused = solution02.fold_batchnorm(conv, bn)
    scale = (bn.weight if bn.affine else torch.ones_like(bn.running_var)) / (bn.running_var + bn.eps).sqrt()
    if conv.weight.shape[1] == len(scale) and conv.weight.shape[0] == len(scale):
        fused.weight = nn.Parameter((conv.weight * scale[None, :, None, None]).detach())
    else:
        fused.weight = nn.Parameter((conv.weight * scale.mean()).detach())
    return fused


# --- chapter 03: distance IoU and the focal loss --------------------------------------------------------

def _diou_loops(boxes_a, boxes_b):
    rows = []
    for a in boxes_a:
        row = []
        for b in boxes_b:
            width = (torch.minimum(a[2], b[2]) - torch.maximum(a[0], b[0])).clamp(min=0)
            height = (torch.minimum(a[3], b[3]) - torch.maximum(a[1], b[1])).clamp(min=0)
            intersection = width * height
            union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - intersection
            centre_gap = ((a[:2] + a[2:]) / 2 - (b[:2] + b[2:]) / 2).pow(2).sum()
            enclosing = (torch.maximum(a[2:], b[2:]) - torch.minimum(a[:2], b[:2])).pow(2).sum()
            row.append(intersection / union - centre_gap / enclosing)
        rows.append(torch.stack(row) if row else boxes_a.new_zeros(0))
    return torch.stack(rows) if rows else boxes_a.new_zeros(0, len(boxes_b))


def _diou_union_diagonal(boxes_a, boxes_b):
    """Normalises by the diagonal of the second box instead of the enclosing box."""
    centres = ((boxes_a[:, None, :2] + boxes_a[:, None, 2:]) / 2 - (boxes_b[None, :, :2] + boxes_b[None, :, 2:]) / 2)
    diagonal = ((boxes_b[:, 2:] - boxes_b[:, :2]) ** 2).sum(-1)[None]
    return solution03.box_iou(boxes_a, boxes_b) - (centres ** 2).sum(-1) / diagonal


def _diou_distance_not_squared(boxes_a, boxes_b):
    centres = ((boxes_a[:, None, :2] + boxes_a[:, None, 2:]) / 2 - (boxes_b[None, :, :2] + boxes_b[None, :, 2:]) / 2)
    top_left = torch.minimum(boxes_a[:, None, :2], boxes_b[None, :, :2])
    bottom_right = torch.maximum(boxes_a[:, None, 2:], boxes_b[None, :, 2:])
    return solution03.box_iou(boxes_a, boxes_b) - centres.norm(dim=-1) / (bottom_right - top_left).norm(dim=-1)


def _focal_from_probabilities(logits, targets, alpha=0.25, gamma=2.0):
    """Written from p = sigmoid(x) with log-sigmoid for stability, in float64."""
    x = logits.double()
    log_p, log_not_p = F.logsigmoid(x), F.logsigmoid(-x)
    p = x.sigmoid()
    positive = -alpha * (1 - p) ** gamma * log_p
    negative = -(1 - alpha) * p ** gamma * log_not_p
    return targets * positive + (1 - targets) * negative


def _focal_naive_log(logits, targets, alpha=0.25, gamma=2.0):
    p = logits.sigmoid()
    p_true = p * targets + (1 - p) * (1 - targets)
    alpha_true = alpha * targets + (1 - alpha) * (1 - targets)
    return -alpha_true * (1 - p_true) ** gamma * p_true.log()


def _focal_gamma_on_p(logits, targets, alpha=0.25, gamma=2.0):
    bce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    alpha_true = alpha * targets + (1 - alpha) * (1 - targets)
    return alpha_true * (1 - logits.sigmoid()) ** gamma * bce


TRANSFER_CASES = [
    (ch00.check_label_smoothing_cross_entropy,
     [("reference", solution00.label_smoothing_cross_entropy),
      ("F.cross_entropy's option", lambda x, y, smoothing=0.1: F.cross_entropy(x, y, label_smoothing=smoothing)),
      ("soft targets", _smoothing_soft_targets), ("loops with logsumexp, float64", _smoothing_loops_float64)],
     [("ε spread over the other C − 1 classes", _smoothing_other_classes),
      ("smoothing ignored", lambda x, y, smoothing=0.1: F.cross_entropy(x, y)),
      ("softmax then log (overflows)", _smoothing_naive_softmax),
      ("returns .item()", lambda x, y, smoothing=0.1: solution00.label_smoothing_cross_entropy(x, y, smoothing).item()),
      ("sum over the batch", lambda x, y, smoothing=0.1: F.cross_entropy(x, y, label_smoothing=smoothing,
                                                                          reduction="sum")),
      ("default ε = 0", lambda x, y, smoothing=0.0: F.cross_entropy(x, y, label_smoothing=smoothing))]),
    (ch01.check_otsu_threshold,
     [("reference", solution01.otsu_threshold), ("loops over t", _otsu_loops),
      ("minimum within-class variance", _otsu_min_within),
      ("cv2.threshold", lambda im: int(cv2.threshold(im, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)[0])),
      ("skimage (NumPy integer)", lambda im: np.int64(threshold_otsu(im)))],
     [("the image mean", lambda im: int(im.mean())), ("last of tied maxima", _otsu_last_maximum),
      ("class means not weighted", _otsu_unweighted),
      ("first bright level", lambda im: solution01.otsu_threshold(im) + 1),
      ("float threshold", lambda im: float(solution01.otsu_threshold(im)))]),
    (ch02.check_conv_transpose_output_size,
     [("reference", solution02.conv_transpose_output_size), ("from a ConvTranspose1d layer", _transpose_size_by_layer)],
     [("forgot output_padding", lambda n, k, s=1, p=0, op=0, d=1: (n - 1) * s - 2 * p + d * (k - 1) + 1),
      ("forgot dilation", lambda n, k, s=1, p=0, op=0, d=1: (n - 1) * s - 2 * p + k + op),
      ("size × stride", lambda n, k, s=1, p=0, op=0, d=1: n * s - 2 * p + d * (k - 1) + op),
      ("padding added, not removed", lambda n, k, s=1, p=0, op=0, d=1: (n - 1) * s + 2 * p + d * (k - 1) + op + 1),
      ("float result", lambda n, k, s=1, p=0, op=0, d=1: float(solution02.conv_transpose_output_size(n, k, s, p, op, d)))]),
    (ch02.check_fold_batchnorm,
     [("reference", solution02.fold_batchnorm), ("new Conv2d, float64 arithmetic", _fold_by_hand_float64),
      ("torch.nn.utils.fusion", lambda conv, bn: fuse_conv_bn_eval(copy.deepcopy(conv).eval(),
                                                                    copy.deepcopy(bn).eval()))],
     [("changes the caller's conv", _fold_in_place), ("forgot eps", _fold_without_eps),
      ("drops the conv's bias", lambda conv, bn: solution02.fold_batchnorm(_without_bias(conv), bn)),
      ("scales the input channels", _fold_scale_on_input_channels),
      ("not folded: conv then BN", lambda conv, bn: nn.Sequential(copy.deepcopy(conv), copy.deepcopy(bn).eval())),
      ("calls bn.eval() on the input", lambda conv, bn: solution02.fold_batchnorm(conv, bn.eval()))]),
    (ch03.check_distance_box_iou,
     [("reference", solution03.distance_box_iou), ("torchvision", ops.distance_box_iou),
      ("loops over pairs", _diou_loops)],
     [("plain IoU", solution03.box_iou), ("second box's diagonal", _diou_union_diagonal),
      ("distance not squared", _diou_distance_not_squared),
      ("detached (computed in NumPy)", lambda a, b: torch.from_numpy(
          ops.distance_box_iou(a.detach(), b.detach()).numpy().copy()))]),
    (ch03.check_sigmoid_focal_loss,
     [("reference", solution03.sigmoid_focal_loss),
      ("torchvision", lambda x, t, alpha=0.25, gamma=2.0: ops.sigmoid_focal_loss(x, t, alpha, gamma)),
      ("log-sigmoid, float64", _focal_from_probabilities)],
     [("log of the probability (−inf for huge logits)", _focal_naive_log),
      ("α on the negatives", lambda x, t, alpha=0.25, gamma=2.0: solution03.sigmoid_focal_loss(x, t, 1 - alpha, gamma)),
      ("(1 − p)^γ for every class", _focal_gamma_on_p),
      ("mean reduction", lambda x, t, alpha=0.25, gamma=2.0: ops.sigmoid_focal_loss(x, t, alpha, gamma, "mean")),
      ("no α", lambda x, t, alpha=0.25, gamma=2.0: solution03.sigmoid_focal_loss(x, t, 0.5, gamma) * 2)]),
]


@pytest.mark.parametrize("name", ["camera", "coins", "moon", "page"])
def test_otsu_solution_matches_opencv_on_real_photos(name):
    image = getattr(skdata, name)()
    expected = cv2.threshold(image, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)[0]
    assert solution01.otsu_threshold(image) == expected


def test_hints_name_the_proven_cause():
    assert "ε/C" in ch00.check_label_smoothing_cross_entropy(_smoothing_other_classes).message
    assert "smallest" in ch01.check_otsu_threshold(_otsu_last_maximum).message
    assert "plain IoU" in ch03.check_distance_box_iou(solution03.box_iou).message
    wrong_alpha = TRANSFER_CASES[-1][2][1][1]
    assert "wrong class" in ch03.check_sigmoid_focal_loss(wrong_alpha).message
    assert math.isfinite(solution03.sigmoid_focal_loss(torch.tensor([-500.0]), torch.tensor([1.0])).item())
