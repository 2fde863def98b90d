"""Every checker accepts its reference solution and rejects the typical wrong answers."""

import pytest
import torch

from course_utils.exercises import ch00
from solutions import ch00 as solution


def _not_solved(*args):
    raise NotImplementedError


CH00 = [
    (ch00.check_to_float_batch, solution.to_float_batch, [
        ("reshape instead of permute", lambda x: x.reshape(x.shape[0], x.shape[3], x.shape[1], x.shape[2]).float() / 255),
        ("forgot /255", lambda x: x.permute(0, 3, 1, 2).float()),
        ("float64", lambda x: x.permute(0, 3, 1, 2).double() / 255),
        ("kept NHWC", lambda x: x.float() / 255),
    ]),
    (ch00.check_accuracy_from_logits, solution.accuracy_from_logits, [
        ("count not fraction", lambda logits, y: float((logits.argmax(1) == y).sum())),
        ("returns a tensor", lambda logits, y: (logits.argmax(1) == y).float().mean()),
        ("arg-max over the batch", lambda logits, y: (logits.argmax(0)[: len(y)] == y[: logits.shape[1]]).float().mean().item()),
    ]),
    (ch00.check_pairwise_squared_distances, solution.pairwise_squared_distances, [
        ("not squared", lambda a, b: torch.cdist(a, b)),
        ("transposed", lambda a, b: ((a[:, None] - b[None]) ** 2).sum(-1).T),
        ("summed the wrong axis", lambda a, b: ((a[:, None] - b[None]) ** 2).sum(0)),
    ]),
    (ch00.check_train_step, solution.train_step, [
        ("no zero_grad", lambda m, x, y, opt, f: _step(m, x, y, opt, f, zero=False)),
        ("no optimizer.step", lambda m, x, y, opt, f: _step(m, x, y, opt, f, step=False)),
        ("returns a tensor", lambda m, x, y, opt, f: _step(m, x, y, opt, f, as_float=False)),
    ]),
]


def _step(model, inputs, targets, optimizer, loss_fn, zero=True, step=True, as_float=True):
    if zero:
        optimizer.zero_grad()
    loss = loss_fn(model(inputs), targets)
    loss.backward()
    if step:
        optimizer.step()
    return loss.item() if as_float else loss


# --- chapter 01: pixels and classical computer vision ---------------------------------------------------
# (imports kept with the chapter's cases so the ch00 part above stays untouched)

import cv2
import numpy as np
import torch.nn.functional as F
from skimage import data as skdata

from course_utils.exercises import ch01
from solutions import ch01 as solution01

_BT601 = np.array([0.299, 0.587, 0.114])
_SOBEL_X = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])


def _conv(image, kernel, padding):
    return F.conv2d(image[None, None], kernel[None, None], padding=padding)[0, 0]


def _replicate_padded(image, kernel):
    p = kernel.shape[0] // 2
    return F.conv2d(F.pad(image[None, None], (p, p, p, p), mode="replicate"), kernel[None, None])[0, 0]


def _gradients(image):
    return _conv(image, _SOBEL_X, 1), _conv(image, _SOBEL_X.T, 1)


def _lut_equalize(image, subtract_min=True, as_float=False, constant_rule=True):
    histogram = np.bincount(image.ravel(), minlength=256)
    cdf = np.cumsum(histogram)
    cdf_min = cdf[np.flatnonzero(histogram)[0]] if subtract_min else 0
    if constant_rule and cdf_min == image.size:
        return image.copy()
    lut = np.rint((cdf - cdf_min) * 255 / max(image.size - cdf_min, 1))
    return lut[image] if as_float else np.clip(lut, 0, 255).astype(np.uint8)[image]


def _min_max_stretch(image):
    low, high = float(image.min()), float(image.max())
    return np.rint((image - low) * 255 / max(high - low, 1)).astype(np.uint8)


CH01 = [
    (ch01.check_conv2d, solution01.conv2d, [
        ("flipped kernel (true convolution)", lambda im, k: _conv(im, k.flip(0, 1), k.shape[0] // 2)),
        ("no padding (valid, smaller output)", lambda im, k: _conv(im, k, 0)),
        ("padding 1 for every kernel size", lambda im, k: _conv(im, k, 1)),
        ("replicate instead of zero padding", _replicate_padded),
        ("transposed kernel", lambda im, k: _conv(im, k.T, k.shape[0] // 2)),
    ]),
    (ch01.check_rgb_to_gray, solution01.rgb_to_gray, [
        ("plain mean of the channels", lambda im: np.rint(im.mean(axis=-1)).astype(np.uint8)),
        ("BGR order", lambda im: np.rint(im[..., ::-1] @ _BT601).astype(np.uint8)),
        ("float output", lambda im: im @ _BT601),
        ("truncated instead of rounded", lambda im: (im @ _BT601).astype(np.uint8)),
    ]),
    (ch01.check_sobel_magnitude, solution01.sobel_magnitude, [
        ("L1 magnitude |gx| + |gy|", lambda im: sum(g.abs() for g in _gradients(im))),
        ("only gx", lambda im: _gradients(im)[0].abs()),
        ("squared magnitude (no sqrt)", lambda im: sum(g ** 2 for g in _gradients(im))),
    ]),
    (ch01.check_equalize_histogram, solution01.equalize_histogram, [
        ("min-max contrast stretch", _min_max_stretch),
        ("forgot to subtract cdf_min", lambda im: _lut_equalize(im, subtract_min=False)),
        ("returns float", lambda im: _lut_equalize(im, as_float=True)),
        ("no constant-image rule", lambda im: _lut_equalize(im, constant_rule=False)),
    ]),
]


def _photo_conv2d():
    image = torch.from_numpy(skdata.camera()).float() / 255
    kernel = torch.randn(5, 5, generator=torch.Generator().manual_seed(0))
    return solution01.conv2d(image, kernel).numpy(), _conv(image, kernel, 2).numpy()


def _photo_rgb_to_gray():
    image = skdata.astronaut()
    return solution01.rgb_to_gray(image), cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)


def _photo_sobel_magnitude():
    image = skdata.camera().astype(np.float64) / 255
    gx = cv2.Sobel(image, cv2.CV_64F, 1, 0, ksize=3, borderType=cv2.BORDER_CONSTANT)
    gy = cv2.Sobel(image, cv2.CV_64F, 0, 1, ksize=3, borderType=cv2.BORDER_CONSTANT)
    return solution01.sobel_magnitude(torch.from_numpy(image).float()).numpy(), cv2.magnitude(gx, gy)


def _photo_equalize_histogram():
    image = skdata.camera()
    return solution01.equalize_histogram(image), cv2.equalizeHist(image)


@pytest.mark.parametrize("name, compute, tolerance", [
    ("conv2d vs F.conv2d", _photo_conv2d, 1e-4),
    ("rgb_to_gray vs cv2.cvtColor(RGB2GRAY)", _photo_rgb_to_gray, 1),
    ("sobel_magnitude vs cv2.Sobel + cv2.magnitude", _photo_sobel_magnitude, 1e-4),
    ("equalize_histogram vs cv2.equalizeHist", _photo_equalize_histogram, 0),
])
def test_ch01_solution_matches_library_on_a_real_photo(name, compute, tolerance):
    got, expected = compute()
    assert got.shape == expected.shape, f"{name}: shape {got.shape} vs {expected.shape}"
    assert got.dtype == expected.dtype or np.issubdtype(got.dtype, np.floating), f"{name}: dtype {got.dtype}"
    max_diff = float(np.abs(got.astype(np.float64) - expected.astype(np.float64)).max())
    assert max_diff <= tolerance, f"{name}: max abs difference {max_diff:g} > {tolerance:g}"


# --- chapter 02 -------------------------------------------------------------------------------------------
from course_utils.exercises import ch02
from solutions import ch02 as solution02


def _accumulate_without_scaling(model, loss_fn, inputs, targets, micro_batches):
    model.zero_grad()
    for x, y in zip(inputs.chunk(micro_batches), targets.chunk(micro_batches)):
        loss_fn(model(x), y).backward()


def _accumulate_without_zeroing(model, loss_fn, inputs, targets, micro_batches):
    for x, y in zip(inputs.chunk(micro_batches), targets.chunk(micro_batches)):
        (loss_fn(model(x), y) / micro_batches).backward()


def _receptive_field_ignoring_stride(layers):
    return 1 + sum(kernel - 1 for kernel, _ in layers)


CH02 = [
    (ch02.check_conv_output_size, solution02.conv_output_size, [
        ("true division", lambda n, k, s=1, p=0, d=1: int((n + 2 * p - d * (k - 1) - 1) / s + 1.5)),
        ("forgot dilation", lambda n, k, s=1, p=0, d=1: (n + 2 * p - k) // s + 1),
        ("forgot padding", lambda n, k, s=1, p=0, d=1: (n - d * (k - 1) - 1) // s + 1),
    ]),
    (ch02.check_conv_parameter_count, solution02.conv_parameter_count, [
        ("no bias", lambda ci, co, k, bias=True, groups=1: k * k * ci // groups * co),
        ("ignores groups", lambda ci, co, k, bias=True, groups=1: k * k * ci * co + (co if bias else 0)),
    ]),
    (ch02.check_receptive_field, solution02.receptive_field, [
        ("ignores stride", _receptive_field_ignoring_stride),
        ("sums kernels", lambda layers: sum(kernel for kernel, _ in layers)),
    ]),
    (ch02.check_accumulate_gradients, solution02.accumulate_gradients, [
        ("sum instead of mean", _accumulate_without_scaling),
        ("stale gradients", _accumulate_without_zeroing),
    ]),
]


@pytest.mark.parametrize("checker, reference, wrong_answers", CH00 + CH01 + CH02,
                         ids=lambda v: getattr(v, "__name__", ""))
def test_checker_accepts_solution_and_rejects_typical_mistakes(checker, reference, wrong_answers):
    assert checker(reference).status == "passed"
    assert checker(_not_solved).status == "not solved"
    for description, wrong in wrong_answers:
        assert checker(wrong).status == "failed", f"{checker.__name__} accepted a wrong answer: {description}"
