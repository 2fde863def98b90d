"""course_utils.motion: clips whose label is their motion, and image pairs with exactly known optical flow."""

import numpy as np
import pytest
import torch
from skimage import data as skdata

from course_utils import motion


def test_moving_digits_move_in_their_labelled_direction_and_stay_inside():
    digits = torch.zeros(12, 1, 28, 28)
    digits[:, :, 10:18, 10:18] = 1.0  # a square "digit", easy to track
    clips, labels = motion.moving_digits(digits, frames=6, size=44, speed=2.0, generator=torch.Generator().manual_seed(0))
    assert clips.shape == (12, 6, 1, 44, 44) and labels.shape == (12,)
    assert set(labels.tolist()) <= set(range(4))
    for clip, label in zip(clips, labels):
        assert torch.allclose(clip.sum(dim=(1, 2, 3)), torch.full((6,), 64.0)), "the digit never leaves the canvas"
        ys, xs = zip(*[(frame[0].nonzero()[:, 0].float().mean(), frame[0].nonzero()[:, 1].float().mean()) for frame in clip])
        step_x, step_y = (xs[-1] - xs[0]) / 5, (ys[-1] - ys[0]) / 5
        expected = {"right": (2, 0), "left": (-2, 0), "down": (0, 2), "up": (0, -2)}[motion.DIRECTIONS[label]]
        assert (round(step_x.item()), round(step_y.item())) == expected


def test_moving_digits_check_their_inputs():
    with pytest.raises(ValueError, match="28"):
        motion.moving_digits(torch.zeros(2, 28, 28))
    with pytest.raises(ValueError, match="too small"):
        motion.moving_digits(torch.zeros(2, 1, 28, 28), frames=20, size=40)


def test_the_warped_pair_has_the_flow_we_asked_for():
    image = skdata.camera().astype(np.float32)[100:228, 100:292]
    flow = motion.smooth_flow(*image.shape, shift=(2.0, -1.0), rotation_degrees=1.0, zoom=1.01, noise=0.5, seed=1)
    second = motion.warp(image, flow)
    ys, xs = np.mgrid[20:108, 20:172]
    # second(x + dx, y + dy) ≈ first(x, y), checked by sampling the second frame at the moved points
    import cv2

    moved = cv2.remap(second, (xs + flow[20:108, 20:172, 0]).astype(np.float32),
                      (ys + flow[20:108, 20:172, 1]).astype(np.float32), cv2.INTER_LINEAR)
    with_true_flow = np.abs(moved - image[20:108, 20:172]).mean()
    without_flow = np.abs(second[20:108, 20:172] - image[20:108, 20:172]).mean()
    half_flow = cv2.remap(second, (xs + 0.5 * flow[20:108, 20:172, 0]).astype(np.float32),
                          (ys + 0.5 * flow[20:108, 20:172, 1]).astype(np.float32), cv2.INTER_LINEAR)
    # grey levels 0-255; what remains with the true flow is the blur of interpolating twice
    assert with_true_flow < 3.0 and with_true_flow < 0.25 * without_flow
    assert with_true_flow < 0.5 * np.abs(half_flow - image[20:108, 20:172]).mean()


def test_endpoint_error_and_the_colour_wheel():
    truth = np.zeros((10, 12, 2), np.float32)
    estimate = truth.copy()
    estimate[..., 0] = 3.0
    estimate[..., 1] = 4.0
    assert motion.endpoint_error(estimate, truth) == pytest.approx(5.0)
    estimate[2:-2, 2:-2] = 0.0  # errors only in the 2-pixel border: the margin must remove them all
    assert motion.endpoint_error(estimate, truth, margin=2) == pytest.approx(0.0)
    with pytest.raises(ValueError):
        motion.endpoint_error(estimate, truth[:5])
    picture = motion.flow_to_rgb(np.stack([np.ones((4, 4)), np.zeros((4, 4))], axis=-1).astype(np.float32))
    assert picture.shape == (4, 4, 3) and picture.dtype == np.uint8
    assert picture[0, 0, 0] > 200 and picture[0, 0, 1] < 50, "rightward motion is red on the wheel"
    down = motion.flow_to_rgb(np.stack([np.zeros((2, 2)), np.ones((2, 2))], axis=-1).astype(np.float32))
    up = motion.flow_to_rgb(np.stack([np.zeros((2, 2)), -np.ones((2, 2))], axis=-1).astype(np.float32))
    assert not np.array_equal(down, up), "opposite directions get different colours"
    still = motion.flow_to_rgb(np.zeros((3, 3, 2), np.float32))
    assert still.max() == 0, "no motion is black"


def test_smooth_flow_is_the_affine_motion_asked_for():
    shift_only = motion.smooth_flow(20, 30, shift=(2.0, -1.0), rotation_degrees=0.0, zoom=1.0)
    assert np.allclose(shift_only[..., 0], 2.0) and np.allclose(shift_only[..., 1], -1.0)
    turned = motion.smooth_flow(21, 21, shift=(0.0, 0.0), rotation_degrees=90.0, zoom=1.0)
    # image coordinates (y down): +90° takes the point right of the centre to the point below it
    assert np.allclose(turned[10, 20], (-10.0, 10.0), atol=1e-4) and np.allclose(turned[10, 10], 0.0, atol=1e-4)
