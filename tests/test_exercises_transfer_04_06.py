"""Transfer exercises of chapters 04–06 (issue 19, point 3): ideas the notebooks did not show.

Each entry of ``TRANSFER_CASES``: the checker, its reference solution, right answers written in other styles
(loops vs vectorised, NumPy vs torch, float64), and at least three plausible wrong answers it must reject.
tests/test_exercises.py judges them all; this file holds the cases and its own extra tests.
"""

import math
from collections import deque

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage
from skimage import measure

from course_utils.exercises import ch04, ch05, ch06
from solutions import ch04 as solution04
from solutions import ch05 as solution05
from solutions import ch06 as solution06

# --- chapter 04: the Dice loss's gradient, instances from a semantic map ----------------------------------


def _dice_gradient_autograd(probabilities, targets, eps=1.0):
    p = probabilities.detach().double().requires_grad_(True)
    g = targets.double()
    loss = 1 - (2 * (p * g).sum() + eps) / (p.sum() + g.sum() + eps)
    loss.backward()
    return p.grad


def _dice_gradient_numpy(probabilities, targets, eps=1.0):
    p, g = probabilities.numpy().astype(np.float64), targets.numpy().astype(np.float64)
    numerator, denominator = 2 * (p * g).sum() + eps, p.sum() + g.sum() + eps
    return torch.from_numpy(numerator / denominator ** 2 - 2 * g / denominator)


def _dice_gradient_no_quotient_rule(probabilities, targets, eps=1.0):
    g = targets.to(probabilities.dtype)
    return -2 * g / (probabilities.sum() + g.sum() + eps)


def _instances_flood_fill(label_map):
    labels = label_map.tolist()
    height, width = len(labels), len(labels[0])
    out = np.zeros((height, width), dtype=np.int32)
    next_id = 1
    for y in range(height):
        for x in range(width):
            if labels[y][x] == 0 or out[y, x]:
                continue
            queue, out[y, x] = deque([(y, x)]), next_id
            while queue:
                cy, cx = queue.popleft()
                for ny, nx in ((cy - 1, cx), (cy + 1, cx), (cy, cx - 1), (cy, cx + 1)):
                    if 0 <= ny < height and 0 <= nx < width and not out[ny, nx] and labels[ny][nx] == labels[cy][cx]:
                        out[ny, nx] = next_id
                        queue.append((ny, nx))
            next_id += 1
    return out


def _instances_skimage(label_map):
    labels = label_map.numpy().astype(np.int64)
    out, offset = np.zeros(labels.shape, dtype=np.int64), 0
    for cls in np.unique(labels[labels > 0]):
        regions = measure.label(labels == cls, connectivity=1)
        out[regions > 0] = regions[regions > 0] + offset
        offset = out.max()
    return torch.from_numpy(out).int()


def _instances_foreground_only(label_map):
    return torch.from_numpy(ndimage.label(label_map.numpy() > 0)[0])


def _instances_eight_connected(label_map):
    labels, out, offset = label_map.numpy(), np.zeros(label_map.shape, dtype=np.int64), 0
    for cls in np.unique(labels[labels > 0]):
        regions, found = ndimage.label(labels == cls, structure=np.ones((3, 3)))
        out[regions > 0] = regions[regions > 0] + offset
        offset += found
    return torch.from_numpy(out)


def _instances_restart_per_class(label_map):
    labels, out = label_map.numpy(), np.zeros(label_map.shape, dtype=np.int64)
    for cls in np.unique(labels[labels > 0]):
        regions, _ = ndimage.label(labels == cls)
        out[regions > 0] = regions[regions > 0]
    return torch.from_numpy(out)


# --- chapter 05: a DDIM step with η, the kernel distance ---------------------------------------------------


def _ddim_numpy_posterior_variance(x_t, eps, t, t_prev, alpha_bars, eta, noise):
    bars = alpha_bars.double().numpy()
    a_t, a_prev = bars[t], bars[t_prev] if t_prev >= 0 else 1.0
    x, e, z = (v.double().numpy() for v in (x_t, eps, noise))
    x0 = (x - math.sqrt(1 - a_t) * e) / math.sqrt(a_t)
    posterior_variance = (1 - a_prev) / (1 - a_t) * (1 - a_t / a_prev)  # DDPM's β̃ over the skipped step
    sigma = eta * math.sqrt(posterior_variance)
    return torch.from_numpy(math.sqrt(a_prev) * x0 + math.sqrt(1 - a_prev - sigma ** 2) * e + sigma * z)


def _ddim_renoise(x_t, eps, t, t_prev, alpha_bars, eta, noise):
    """Another form: x̂0, then re-noise to the level 1 − ᾱ_prev with a mix of ε̂ and fresh noise."""
    bar_t = alpha_bars[t]
    bar_prev = alpha_bars[max(t_prev, 0)] if t_prev >= 0 else alpha_bars.new_ones(())
    x0 = (x_t - (1 - bar_t).sqrt() * eps) / bar_t.sqrt()
    fresh_share = eta ** 2 * (1 - bar_t / bar_prev) / (1 - bar_t)  # σ² / (1 − ᾱ_prev)
    level = (1 - bar_prev).sqrt()
    return bar_prev.sqrt() * x0 + level * ((1 - fresh_share).sqrt() * eps + fresh_share.sqrt() * noise)


def _ddim_wraps_t_prev(x_t, eps, t, t_prev, alpha_bars, eta, noise):
    bar_t, bar_prev = alpha_bars[t], alpha_bars[t_prev]  # −1 silently picks the noisiest entry
    x0 = (x_t - (1 - bar_t).sqrt() * eps) / bar_t.sqrt()
    sigma = eta * ((1 - bar_prev) / (1 - bar_t) * (1 - bar_t / bar_prev)).clamp(min=0).sqrt()
    return bar_prev.sqrt() * x0 + (1 - bar_prev - sigma ** 2).clamp(min=0).sqrt() * eps + sigma * noise


def _ddim_sigma_not_removed(x_t, eps, t, t_prev, alpha_bars, eta, noise):
    bar_t = alpha_bars[t]
    bar_prev = alpha_bars[t_prev] if t_prev >= 0 else torch.ones((), dtype=x_t.dtype)
    x0 = (x_t - (1 - bar_t).sqrt() * eps) / bar_t.sqrt()
    sigma = eta * ((1 - bar_prev) / (1 - bar_t) * (1 - bar_t / bar_prev)).sqrt()
    return bar_prev.sqrt() * x0 + (1 - bar_prev).sqrt() * eps + sigma * noise


def _ddim_eta_as_sigma(x_t, eps, t, t_prev, alpha_bars, eta, noise):
    bar_t = alpha_bars[t]
    bar_prev = alpha_bars[t_prev] if t_prev >= 0 else torch.ones((), dtype=x_t.dtype)
    x0 = (x_t - (1 - bar_t).sqrt() * eps) / bar_t.sqrt()
    sigma = eta * (1 - bar_t / bar_prev).sqrt()  # DDPM's β_t, without the (1 − ᾱ_prev)/(1 − ᾱ_t) factor
    return bar_prev.sqrt() * x0 + (1 - bar_prev - sigma ** 2).clamp(min=0).sqrt() * eps + sigma * noise


def _kernel_distance_loops(features_a, features_b, degree=3, coef=1.0):
    a, b = features_a.tolist(), features_b.tolist()
    d = len(a[0])
    kernel = lambda x, y: (sum(u * v for u, v in zip(x, y)) / d + coef) ** degree
    within_a = sum(kernel(x, y) for i, x in enumerate(a) for j, y in enumerate(a) if i != j) / (len(a) * (len(a) - 1))
    within_b = sum(kernel(x, y) for i, x in enumerate(b) for j, y in enumerate(b) if i != j) / (len(b) * (len(b) - 1))
    across = sum(kernel(x, y) for x in a for y in b) / (len(a) * len(b))
    return within_a + within_b - 2 * across


def _kernel_distance_numpy(features_a, features_b, degree=3, coef=1.0):
    a, b = features_a.numpy().astype(np.float64), features_b.numpy().astype(np.float64)
    k = lambda x, y: (x @ y.T / a.shape[1] + coef) ** degree
    m, n = len(a), len(b)
    k_aa, k_bb = k(a, a), k(b, b)
    return ((k_aa.sum() - np.trace(k_aa)) / (m * (m - 1)) + (k_bb.sum() - np.trace(k_bb)) / (n * (n - 1))
            - 2 * k(a, b).mean())  # a NumPy float


def _kernel_distance_biased(features_a, features_b, degree=3, coef=1.0):
    k = lambda x, y: (x.double() @ y.double().T / x.shape[1] + coef) ** degree
    return float(k(features_a, features_a).mean() + k(features_b, features_b).mean()
                 - 2 * k(features_a, features_b).mean())


def _kernel_distance_without_gamma(features_a, features_b, degree=3, coef=1.0):
    d = features_a.shape[1]
    return solution05.kernel_distance(features_a * math.sqrt(d), features_b * math.sqrt(d), degree, coef)


def _kernel_distance_torchmetrics_sizes(features_a, features_b, degree=3, coef=1.0):
    """torchmetrics' formula, which assumes equal set sizes: m everywhere."""
    a, b = features_a.double(), features_b.double()
    k = lambda x, y: (x @ y.T / a.shape[1] + coef) ** degree
    m = len(a)
    k_aa, k_bb = k(a, a), k(b, b)
    return float((k_aa.sum() - k_aa.trace() + k_bb.sum() - k_bb.trace()) / (m * (m - 1)) - 2 * k(a, b).sum() / m ** 2)


# --- chapter 06: resampling position embeddings, Swin's relative position index ---------------------------


def _resample_with_timm(pos_embed, new_grid, num_prefix_tokens=1):
    from timm.layers import resample_abs_pos_embed

    return resample_abs_pos_embed(pos_embed, list(new_grid), num_prefix_tokens=num_prefix_tokens, antialias=False)


def _resample_transpose_float64(pos_embed, new_grid, num_prefix_tokens=1):
    head, grid = pos_embed.split([num_prefix_tokens, pos_embed.shape[1] - num_prefix_tokens], dim=1)
    side = round(math.sqrt(grid.shape[1]))
    image = grid.double().transpose(1, 2).reshape(1, -1, side, side)  # D × g × g, rows then columns
    image = F.interpolate(image, size=(new_grid[0], new_grid[1]), mode="bicubic")
    return torch.cat([head.double(), image.flatten(2).transpose(1, 2)], dim=1)


def _resample_plain_reshape(pos_embed, new_grid, num_prefix_tokens=1):
    head, grid = pos_embed[:, :num_prefix_tokens], pos_embed[:, num_prefix_tokens:]
    side = math.isqrt(grid.shape[1])
    image = F.interpolate(grid.reshape(1, -1, side, side), size=tuple(new_grid), mode="bicubic")
    return torch.cat([head, image.reshape(1, new_grid[0] * new_grid[1], -1)], dim=1)


def _resample_bilinear(pos_embed, new_grid, num_prefix_tokens=1):
    head, grid = pos_embed[:, :num_prefix_tokens], pos_embed[:, num_prefix_tokens:]
    side = math.isqrt(grid.shape[1])
    image = grid.reshape(1, side, side, -1).permute(0, 3, 1, 2)
    image = F.interpolate(image, size=tuple(new_grid), mode="bilinear", align_corners=False)
    return torch.cat([head, image.permute(0, 2, 3, 1).reshape(1, -1, pos_embed.shape[-1])], dim=1)


def _resample_all_tokens(pos_embed, new_grid, num_prefix_tokens=1):
    return solution06.resample_pos_embed(pos_embed, new_grid, 0) if num_prefix_tokens == 0 else torch.cat(
        [pos_embed[:, :num_prefix_tokens] * 0 + pos_embed[:, num_prefix_tokens:num_prefix_tokens + 1],
         solution06.resample_pos_embed(pos_embed, new_grid, num_prefix_tokens)[:, num_prefix_tokens:]], dim=1)


def _resample_numpy(pos_embed, new_grid, num_prefix_tokens=1):
    return torch.from_numpy(solution06.resample_pos_embed(pos_embed.detach(), new_grid, num_prefix_tokens).numpy())


def _relative_index_loops(window_h, window_w):
    tokens = [(r, c) for r in range(window_h) for c in range(window_w)]
    return torch.tensor([[(ri - rj + window_h - 1) * (2 * window_w - 1) + (ci - cj + window_w - 1)
                          for rj, cj in tokens] for ri, ci in tokens])


def _relative_index_numpy(window_h, window_w):
    rows, cols = np.divmod(np.arange(window_h * window_w), window_w)
    dy = rows[:, None] - rows[None] + window_h - 1
    dx = cols[:, None] - cols[None] + window_w - 1
    return (dy * (2 * window_w - 1) + dx).astype(np.int32)


def _relative_index_height_stride(window_h, window_w):
    index = solution06.relative_position_index(window_h, window_w)
    dy, dx = index // (2 * window_w - 1), index % (2 * window_w - 1)
    return dy * (2 * window_h - 1) + dx


TRANSFER_CASES = [
    (ch04.check_dice_loss_gradient,
     [("reference", solution04.dice_loss_gradient), ("autograd in float64", _dice_gradient_autograd),
      ("NumPy, rearranged formula", _dice_gradient_numpy)],
     [("gradient of the coefficient", lambda p, g, eps=1.0: -solution04.dice_loss_gradient(p, g, eps)),
      ("denominator treated as a constant", _dice_gradient_no_quotient_rule),
      ("eps ignored", lambda p, g, eps=1.0: solution04.dice_loss_gradient(p, g, 0.0)),
      ("default eps 0", lambda p, g, eps=0.0: solution04.dice_loss_gradient(p, g, eps)),
      ("float16 precision", lambda p, g, eps=1.0: solution04.dice_loss_gradient(p.half().float(), g, eps).half().to(p.dtype))]),
    (ch04.check_semantic_to_instances,
     [("reference", solution04.semantic_to_instances), ("breadth-first flood fill, NumPy int32", _instances_flood_fill),
      ("skimage.measure.label per class", _instances_skimage)],
     [("one mask for all classes", _instances_foreground_only), ("8-connectivity", _instances_eight_connected),
      ("ids restart for every class", _instances_restart_per_class),
      ("float ids", lambda m: solution04.semantic_to_instances(m).float()),
      ("background labelled too", lambda m: solution04.semantic_to_instances(m + 1))]),
    (ch05.check_ddim_step,
     [("reference", solution05.ddim_step), ("NumPy float64 with DDPM's posterior variance", _ddim_numpy_posterior_variance),
      ("re-noising form", _ddim_renoise)],
     [("alpha_bars[-1] for the last step", _ddim_wraps_t_prev), ("σ not taken out of the direction", _ddim_sigma_not_removed),
      ("σ from β_t alone", _ddim_eta_as_sigma),
      ("η ignored", lambda x, e, t, tp, bars, eta, z: solution05.ddim_step(x, e, t, tp, bars, 0.0, z))]),
    (ch05.check_kernel_distance,
     [("reference", solution05.kernel_distance), ("Python loops", _kernel_distance_loops),
      ("NumPy, a NumPy float", _kernel_distance_numpy)],
     [("biased (pairs (x, x) included)", _kernel_distance_biased), ("no 1/d in the kernel", _kernel_distance_without_gamma),
      ("torchmetrics' equal-size formula", _kernel_distance_torchmetrics_sizes),
      ("degree fixed at 3", lambda a, b, degree=3, coef=1.0: solution05.kernel_distance(a, b, 3, coef))]),
    (ch06.check_resample_pos_embed,
     [("reference", solution06.resample_pos_embed), ("timm without antialiasing", _resample_with_timm),
      ("transpose and float64", _resample_transpose_float64)],
     [("reshape without moving D", _resample_plain_reshape), ("bilinear", _resample_bilinear),
      ("prefix tokens overwritten", _resample_all_tokens), ("through NumPy (no gradient)", _resample_numpy),
      ("height and width swapped", lambda pe, g, n=1: solution06.resample_pos_embed(pe, (g[1], g[0]), n))]),
    (ch06.check_relative_position_index,
     [("reference", solution06.relative_position_index), ("Python loops", _relative_index_loops),
      ("NumPy int32", _relative_index_numpy)],
     [("offsets j − i", lambda h, w: solution06.relative_position_index(h, w).T),
      ("row stride 2·Wh − 1", _relative_index_height_stride),
      ("offsets not shifted", lambda h, w: solution06.relative_position_index(h, w) - (h - 1) * (2 * w - 1) - (w - 1)),
      ("float indices", lambda h, w: solution06.relative_position_index(h, w).float())]),
]


def test_hints_name_the_cause_only_when_the_value_proves_it():
    assert "sign flips" in ch04.check_dice_loss_gradient(TRANSFER_CASES[0][2][0][1]).message
    assert "quotient rule" in ch04.check_dice_loss_gradient(_dice_gradient_no_quotient_rule).message
    assert "— " not in ch04.check_dice_loss_gradient(TRANSFER_CASES[0][2][2][1]).message  # eps ignored: no hint
    assert "keep counting" in ch04.check_semantic_to_instances(_instances_restart_per_class).message
    assert "4-connectivity" in ch04.check_semantic_to_instances(_instances_eight_connected).message
    assert "wraps around" in ch05.check_ddim_step(_ddim_wraps_t_prev).message
    assert "√(1 − ᾱ_prev − σ²)" in ch05.check_ddim_step(_ddim_sigma_not_removed).message
    assert "biased" in ch05.check_kernel_distance(_kernel_distance_biased).message
    assert "— " not in ch05.check_kernel_distance(_kernel_distance_without_gamma).message
    assert "move D to the channels" in ch06.check_resample_pos_embed(_resample_plain_reshape).message
    assert "not j − i" in ch06.check_relative_position_index(TRANSFER_CASES[5][2][0][1]).message
