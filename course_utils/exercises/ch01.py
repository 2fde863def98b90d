"""Checkers for chapter 01's exercises (pixels and classical computer vision).

Each from-scratch function is compared with the library that does the same job on the same input:
``F.conv2d`` for filtering, OpenCV for histogram equalisation; Otsu's threshold with an exact (rational)
computation of the between-class variance for every candidate threshold.
"""

from __future__ import annotations

from fractions import Fraction

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from ..checks import CheckFailed, call, expect_close, expect_type, is_int, run_checks


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _correlate(image: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """The library answer: cross-correlation with zero padding that keeps the size."""
    image, kernel = image.double(), kernel.double()
    return F.conv2d(image[None, None], kernel[None, None], padding=kernel.shape[0] // 2)[0, 0]


def _zeros(k: int) -> str:
    return "1 zero" if k // 2 == 1 else f"{k // 2} zeros"


def _same(got: torch.Tensor, expected: torch.Tensor, atol: float = 1e-4) -> bool:
    return (isinstance(got, torch.Tensor) and got.shape == expected.shape
            and torch.allclose(got.detach().double(), expected.double(), atol=atol, rtol=1e-4))


# --- exercise 1: conv2d ---------------------------------------------------------------------------------

def _expect_correlation(fn, image: torch.Tensor, kernel: torch.Tensor, what: str) -> None:
    k = kernel.shape[0]
    out = call(fn, image, kernel)
    expect_type(out, torch.Tensor, what)
    if tuple(out.shape) != tuple(image.shape):
        height, width = image.shape
        raise CheckFailed(f"{what} has shape {tuple(out.shape)}: the output should keep the input size "
                          f"{height}×{width}; did you forget padding? (a {k}×{k} kernel needs "
                          f"{_zeros(k)} on each side, padding=k//2)")
    expected = _correlate(image, kernel)
    if _same(out, expected):
        return
    if _same(out, _correlate(image, kernel.flip(0, 1))):
        raise CheckFailed("your output equals the flipped-kernel result: you computed convolution; "
                          "F.conv2d computes cross-correlation — "
                          "out[y, x] = Σ kernel[i, j]·image[y+i−p, x+j−p] (p = k//2) with the kernel "
                          "as given, which is what CNN layers learn")
    p = k // 2
    if _same(out[p:-p, p:-p], expected[p:-p, p:-p]):
        raise CheckFailed("the interior matches but the border differs: pad with zeros (F.conv2d's "
                          "padding=k//2 adds zeros, not copies or reflections of the edge pixels)")
    expect_close(out, expected, what, atol=1e-4)


def check_conv2d(fn):
    """H×W image, k×k kernel → H×W cross-correlation with zero 'same' padding, as F.conv2d."""
    def size(fn):
        generator = _generator(0)
        image = torch.rand(6, 8, generator=generator)
        for k in (3, 5):
            out = call(fn, image, torch.rand(k, k, generator=generator))
            expect_type(out, torch.Tensor, f"the output for a 6×8 image and a {k}×{k} kernel")
            if tuple(out.shape) != (6, 8):
                raise CheckFailed(f"with a {k}×{k} kernel your output is {tuple(out.shape)}: it should keep "
                                  f"the input size 6×8; did you forget padding? (padding=k//2: {_zeros(k)} "
                                  "on each side)")

    def asymmetric(fn):
        # A kernel with no symmetry: correlation and (flipped-kernel) convolution give different answers.
        image = torch.arange(30, dtype=torch.float32).reshape(5, 6) % 7
        kernel = torch.tensor([[0.0, 1.0, 2.0], [0.0, 0.0, 3.0], [-1.0, 0.0, 0.0]])
        _expect_correlation(fn, image, kernel, "the output for an asymmetric 3×3 kernel")

    def random(fn):
        generator = _generator(1)
        image = torch.randn(7, 9, generator=generator)
        for k in (3, 5):
            _expect_correlation(fn, image, torch.randn(k, k, generator=generator),
                                f"the output for a random 7×9 image and {k}×{k} kernel")

    def other_sizes(fn):
        generator = _generator(5)
        for height, width, k, dtype in ((4, 4, 1, torch.float32), (9, 6, 7, torch.float32),
                                        (3, 2, 5, torch.float32), (6, 5, 3, torch.float64)):
            image = torch.randn(height, width, generator=generator, dtype=dtype)
            _expect_correlation(fn, image, torch.randn(k, k, generator=generator, dtype=dtype),
                                f"the output for a {height}×{width} {dtype} image and a {k}×{k} kernel")

    return run_checks("conv2d", fn, [("output size", size), ("asymmetric kernel", asymmetric),
                                     ("random 3×3 and 5×5 kernels vs F.conv2d", random),
                                     ("1×1 and 7×7 kernels, small images, float64", other_sizes)])


# --- shared by the uint8 exercises ------------------------------------------------------------------

def _expect_uint8_image(out, shape: tuple, what: str, rounding_hint: str) -> None:
    """The answer must be a uint8 NumPy image of ``shape``; messages name the problem and the fix."""
    expect_type(out, np.ndarray, what)
    if out.dtype != np.uint8:
        raise CheckFailed(f"{what} has dtype {out.dtype}, expected uint8: {rounding_hint}")
    if out.shape != shape:
        raise CheckFailed(f"{what} has shape {out.shape}, expected {shape} (one value per pixel)")


# --- histogram equalisation ---------------------------------------------------------------------

def _low_contrast_image() -> np.ndarray:
    """16×20 image with levels 100..130 (bunched near 115) and a single darkest pixel at 95.

    With one darkest pixel, N − cdf_min = 319 is odd, so (cdf − cdf_min)·255/(N − cdf_min) is never
    exactly halfway between two levels: any rounding convention (np.rint, np.round, floor(x + 0.5), float32
    or float64) gives OpenCV's exact answer.
    """
    generator = _generator(4)
    a = torch.randint(100, 116, (16, 20), generator=generator)
    b = torch.randint(0, 16, (16, 20), generator=generator)
    image = (a + b).to(torch.uint8).numpy()
    image[0, 0] = 95
    return image


def _expect_equalized_array(out, shape: tuple) -> None:
    _expect_uint8_image(out, shape, "the equalised image",
                        "round the lookup table (np.rint) and convert it with .astype(np.uint8)")


def _two_level_image() -> np.ndarray:
    image = np.full((5, 6), 40, dtype=np.uint8)
    image[:2] = 200
    return image


def _random_image() -> np.ndarray:
    """Levels 1..255 and one pixel at 0: N − cdf_min = 107 is prime, so no level rounds from exactly .5."""
    image = torch.randint(1, 256, (9, 12), dtype=torch.uint8, generator=_generator(7)).numpy()
    image[4, 5] = 0
    return image


def _expect_equalized(fn, image: np.ndarray) -> None:
    out = call(fn, image)
    _expect_equalized_array(out, image.shape)
    expected = cv2.equalizeHist(image)
    differ = out != expected
    if not differ.any():
        return
    low, high = float(image.min()), float(image.max())
    stretched = np.rint((image - low) * 255 / (high - low)).astype(np.uint8)
    if np.array_equal(out, stretched) and not np.array_equal(stretched, expected):
        raise CheckFailed("you stretched the levels linearly (min → 0, max → 255); equalisation maps "
                          "each level through the cumulative histogram: lut[i] = round((cdf[i] − "
                          "cdf_min)·255/(N − cdf_min))")
    y, x = np.argwhere(differ)[0]
    raise CheckFailed(f"{int(differ.sum())} of {differ.size} pixels differ from cv2.equalizeHist; the "
                      f"first at ({y}, {x}): input level {image[y, x]} should become {expected[y, x]}, "
                      f"you have {out[y, x]}")


def check_equalize_histogram(fn):
    """uint8 H×W → uint8 H×W global histogram equalisation, identical to cv2.equalizeHist."""
    def full_range(fn):
        image = _low_contrast_image()
        out = call(fn, image)
        _expect_equalized_array(out, image.shape)
        if (int(out.min()), int(out.max())) != (0, 255):
            raise CheckFailed(f"for an input with levels {image.min()}..{image.max()} your output spans "
                              f"{out.min()}..{out.max()}, expected 0..255: the darkest level should map to 0 "
                              "— subtract cdf_min: (cdf[i] − cdf_min)·255/(N − cdf_min)")

    def exact(fn):
        for image in (_low_contrast_image(), _two_level_image(), _random_image()):
            _expect_equalized(fn, image)

    def constant(fn):
        image = np.full((4, 5), 77, dtype=np.uint8)
        out = call(fn, image)
        _expect_equalized_array(out, image.shape)
        if not np.array_equal(out, image):
            raise CheckFailed(f"a constant image (all 77) should come back unchanged, as cv2.equalizeHist "
                              f"does (N − cdf_min = 0: nothing to spread), got levels "
                              f"{sorted(set(out.ravel().tolist()))[:5]}")

    return run_checks("equalize_histogram", fn, [("low contrast → full 0..255 range", full_range),
                                                 ("low-contrast, two-level and random images vs cv2.equalizeHist", exact),
                                                 ("constant image", constant)])


# --- Otsu's threshold -----------------------------------------------------------------------------------

def _between_class_variances(image: np.ndarray) -> list:
    """Exact N²·σ²_B for every t in 0..255 (levels ≤ t dark); None where one class is empty."""
    histogram = np.bincount(image.ravel(), minlength=256).tolist()
    total, total_sum = sum(histogram), sum(level * n for level, n in enumerate(histogram))
    variances, count, level_sum = [], 0, 0
    for level, n in enumerate(histogram):
        count, level_sum = count + n, level_sum + level * n
        if count == 0 or count == total:
            variances.append(None)
            continue
        # w_d·w_b·(μ_d − μ_b)² times N², in integers: (N·S_t − n_t·S)² / (n_t·(N − n_t)).
        variances.append(Fraction((total * level_sum - count * total_sum) ** 2, count * (total - count)))
    return variances


def _expect_otsu(fn, image: np.ndarray, what: str) -> None:
    got = call(fn, image)
    if isinstance(got, (float, np.floating)) and float(got).is_integer():
        raise CheckFailed(f"{what}: you return the float {got!r}; return the threshold as an int (a grey level)")
    if not is_int(got):
        raise CheckFailed(f"{what}: the threshold should be an int, got {type(got).__name__} {got!r}")
    variances = _between_class_variances(image)
    best = max(v for v in variances if v is not None)
    expected = next(t for t, v in enumerate(variances) if v == best)
    if got == expected:
        return
    histogram = np.bincount(image.ravel(), minlength=256)
    got_variance = variances[int(got)] if 0 <= got <= 255 else None
    # Two different splits can tie (a symmetric histogram): float rounding may pick either; both are right.
    if got_variance is not None and histogram[got] > 0 and got_variance >= best * (1 - Fraction(1, 10 ** 9)):
        return
    hint = ""
    if got_variance is not None and got_variance == best:
        hint = (f" — {got} splits the image the same way, but levels {expected + 1}..{got} are empty: "
                "when several t tie, return the smallest")
    raise CheckFailed(f"{what}: you return {got}, Otsu's threshold is {expected}{hint}")


def _bimodal(shape, low, high, spread, seed) -> np.ndarray:
    generator = np.random.default_rng(seed)
    centres = np.where(generator.random(shape) < 0.35, low, high)
    return np.clip(np.rint(centres + generator.normal(0, spread, shape)), 0, 255).astype(np.uint8)


def check_otsu_threshold(fn):
    """uint8 H×W (≥ 2 grey levels) → int t maximising the between-class variance, as cv2's THRESH_OTSU."""
    def hand_made(fn):
        two_levels = np.full((5, 6), 40, dtype=np.uint8)
        two_levels[:2] = 200
        _expect_otsu(fn, two_levels, "a 5×6 image of levels 40 and 200 (every t in 40..199 splits it alike)")
        _expect_otsu(fn, np.array([[0, 255]], dtype=np.uint8), "the 1×2 image [[0, 255]]")
        _expect_otsu(fn, np.array([[100, 101]], dtype=np.uint8), "the 1×2 image [[100, 101]]")
        _expect_otsu(fn, np.repeat(np.array([[0, 100, 255]], dtype=np.uint8), 4, axis=0),
                     "levels 0, 100 and 255, four pixels each")
        three = np.array([[10] * 6 + [20] * 3 + [200] * 5], dtype=np.uint8)
        _expect_otsu(fn, three, "levels 10 (×6), 20 (×3) and 200 (×5)")
        outlier = np.full((4, 4), 100, dtype=np.uint8)
        outlier[3, 3] = 101
        _expect_otsu(fn, outlier, "fifteen pixels at 100 and one at 101")

    def bimodal(fn):
        for shape, low, high, spread, seed in (((20, 30), 60, 180, 15, 0), ((7, 5), 30, 90, 10, 1),
                                               ((64, 48), 100, 140, 25, 2), ((1, 40), 5, 250, 4, 3)):
            image = _bimodal(shape, low, high, spread, seed)
            _expect_otsu(fn, image, f"a {shape[0]}×{shape[1]} image with peaks at {low} and {high}")

    def random_and_views(fn):
        generator = np.random.default_rng(4)
        for height, width in ((9, 12), (3, 2), (16, 1)):
            image = generator.integers(0, 256, (height, width), dtype=np.uint8)
            _expect_otsu(fn, image, f"a random {height}×{width} image")
        photo = _bimodal((30, 40), 50, 170, 20, 5)
        _expect_otsu(fn, photo[::3, 1::2], "a strided view photo[::3, 1::2] (not contiguous)")

    return run_checks("otsu_threshold", fn, [("two levels, tiny and hand-made images", hand_made),
                                             ("bimodal images", bimodal),
                                             ("random images and a strided view", random_and_views)])
