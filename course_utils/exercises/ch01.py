"""Checkers for chapter 01's exercises (pixels and classical computer vision).

Each from-scratch function is compared with the library that does the same job on the same input:
``F.conv2d`` for filtering and the Sobel gradient, OpenCV for grey conversion and histogram equalisation.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from ..checks import CheckFailed, call, expect_close, expect_shape, expect_type, run_checks

SOBEL_X = torch.tensor([[-1.0, 0.0, 1.0],
                        [-2.0, 0.0, 2.0],
                        [-1.0, 0.0, 1.0]])


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


# --- exercise 2: rgb_to_gray ----------------------------------------------------------------------------

def _expect_uint8_image(out, shape: tuple, what: str, rounding_hint: str) -> None:
    """The answer must be a uint8 NumPy image of ``shape``; messages name the problem and the fix."""
    expect_type(out, np.ndarray, what)
    if out.dtype != np.uint8:
        raise CheckFailed(f"{what} has dtype {out.dtype}, expected uint8: {rounding_hint}")
    if out.shape != shape:
        raise CheckFailed(f"{what} has shape {out.shape}, expected {shape} (one value per pixel)")


def _expect_gray_array(out, shape: tuple) -> None:
    _expect_uint8_image(out, shape, "the grey image",
                        "round to the nearest level (np.rint) and convert with .astype(np.uint8)")


def check_rgb_to_gray(fn):
    """uint8 H×W×3 RGB → uint8 H×W BT.601 luma, as cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)."""
    def pure_colours(fn):
        image = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255]]], dtype=np.uint8)
        out = call(fn, image)
        _expect_gray_array(out, (1, 3))
        got, expected = out[0].tolist(), [76, 150, 29]
        if got == expected:
            return
        if got[0] == 29:
            raise CheckFailed(f"you give {got}, expected {expected}: pure red gave 29 = "
                              "0.114·255, the blue weight — did you treat the image as BGR? (OpenCV loads "
                              "BGR, but this image is RGB: Y = 0.299 R + 0.587 G + 0.114 B)")
        if len(set(got)) == 1:
            raise CheckFailed(f"all three give {got[0]}, expected {expected}: a plain mean "
                              "of the channels ignores that the eye is most sensitive to green; use the "
                              "BT.601 weights 0.299, 0.587, 0.114")
        if got == [76, 149, 29]:
            raise CheckFailed("pure green gave 149, expected 150 (0.587·255 = 149.685): round to the "
                              "nearest level with np.rint before .astype(np.uint8), which truncates")
        raise CheckFailed(f"you give {got}, expected {expected} (0.299·255, 0.587·255, "
                          "0.114·255, rounded)")

    def greys(fn):
        image = np.array([[[0, 0, 0], [255, 255, 255], [128, 128, 128], [7, 7, 7]]], dtype=np.uint8)
        out = call(fn, image)
        _expect_gray_array(out, (1, 4))
        if out[0].tolist() != [0, 255, 128, 7]:
            raise CheckFailed(f"black, white and greys keep their level (the weights sum to 1): expected "
                              f"[0, 255, 128, 7], got {out[0].tolist()}")

    def random(fn):
        image = torch.randint(0, 256, (6, 7, 3), dtype=torch.uint8, generator=_generator(2)).numpy()
        out = call(fn, image)
        _expect_gray_array(out, (6, 7))
        expected = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        difference = np.abs(out.astype(int) - expected.astype(int))
        if difference.max() > 1:
            y, x = np.unravel_index(difference.argmax(), difference.shape)
            raise CheckFailed(f"at pixel ({y}, {x}), RGB {image[y, x].tolist()}, you have {out[y, x]}, "
                              f"cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) gives {expected[y, x]} — off by "
                              f"{difference.max()} (1 is allowed: OpenCV rounds in fixed point)")

    return run_checks("rgb_to_gray", fn, [("pure red, green, blue", pure_colours), ("black, white, greys", greys),
                                          ("random image vs OpenCV", random)])


# --- exercise 3: sobel_magnitude ------------------------------------------------------------------------

def _expect_sobel(fn, image: torch.Tensor, what: str) -> None:
    out = call(fn, image)
    expect_shape(out, tuple(image.shape), what)
    gx, gy = _correlate(image, SOBEL_X), _correlate(image, SOBEL_X.T)
    expected = torch.sqrt(gx ** 2 + gy ** 2)
    if _same(out, expected):
        return
    diagnoses = [
        (gx.abs() + gy.abs(), "you returned |gx| + |gy|; the magnitude is sqrt(gx² + gy²)"),
        (gx ** 2 + gy ** 2, "you returned gx² + gy²: take the square root, sqrt(gx² + gy²)"),
        (gx.abs(), "you returned |gx| only: combine both directions, sqrt(gx² + gy²)"),
        (gx, "you returned gx only: combine both directions, sqrt(gx² + gy²)"),
        (gy.abs(), "you returned |gy| only: combine both directions, sqrt(gx² + gy²)"),
        (gy, "you returned gy only: combine both directions, sqrt(gx² + gy²)"),
    ]
    for wrong, message in diagnoses:
        if _same(out, wrong):
            raise CheckFailed(message)
    expect_close(out, expected, what, atol=1e-4)


def check_sobel_magnitude(fn):
    """H×W float image → H×W sqrt(gx² + gy²) with 3×3 Sobel kernels and zero 'same' padding."""
    def vertical_edge(fn):
        image = torch.zeros(6, 7)
        image[:, 4:] = 1.0  # dark left, bright right: gx responds along the edge, gy only at the top/bottom
        _expect_sobel(fn, image, "the magnitude for a vertical step edge")

    def diagonal_edge(fn):
        ys, xs = torch.meshgrid(torch.arange(7), torch.arange(7), indexing="ij")
        image = (xs > ys).float()  # gx and gy both respond: tells the Euclidean norm from the others
        _expect_sobel(fn, image, "the magnitude for a diagonal edge")

    def random(fn):
        _expect_sobel(fn, torch.rand(5, 8, generator=_generator(3)), "the magnitude for a random 5×8 image")
        _expect_sobel(fn, torch.rand(6, 4, generator=_generator(6), dtype=torch.float64),
                      "the magnitude for a random 6×4 float64 image")

    return run_checks("sobel_magnitude", fn, [("vertical step edge", vertical_edge),
                                              ("diagonal edge", diagonal_edge), ("random image", random)])


# --- exercise 4: equalize_histogram ---------------------------------------------------------------------

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
