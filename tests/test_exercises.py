"""Every checker accepts its reference solution and rejects the typical wrong answers."""

import importlib

import pytest
import torch

from course_utils.exercises import ch00
from solutions import ch00 as solution


def _not_solved(*args):
    raise NotImplementedError


CH00 = [
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


def _conv(image, kernel, padding):
    return F.conv2d(image[None, None], kernel[None, None], padding=padding)[0, 0]


def _replicate_padded(image, kernel):
    p = kernel.shape[0] // 2
    return F.conv2d(F.pad(image[None, None], (p, p, p, p), mode="replicate"), kernel[None, None])[0, 0]


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


def _photo_equalize_histogram():
    image = skdata.camera()
    return solution01.equalize_histogram(image), cv2.equalizeHist(image)


@pytest.mark.parametrize("name, compute, tolerance", [
    ("conv2d vs F.conv2d", _photo_conv2d, 1e-4),
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


CH02 = [
    (ch02.check_accumulate_gradients, solution02.accumulate_gradients, [
        ("sum instead of mean", _accumulate_without_scaling),
        ("stale gradients", _accumulate_without_zeroing),
    ]),
]




# --- chapter 03 -------------------------------------------------------------------------------------------
from course_utils.exercises import ch03
from solutions import ch03 as solution03


def _iou_without_clamp(boxes_a, boxes_b):
    top_left = torch.maximum(boxes_a[:, None, :2], boxes_b[None, :, :2])
    bottom_right = torch.minimum(boxes_a[:, None, 2:], boxes_b[None, :, 2:])
    intersection = (bottom_right - top_left).prod(dim=-1)  # two negative sides multiply to a positive
    area_a = (boxes_a[:, 2:] - boxes_a[:, :2]).prod(dim=-1)
    area_b = (boxes_b[:, 2:] - boxes_b[:, :2]).prod(dim=-1)
    return intersection / (area_a[:, None] + area_b[None, :] - intersection)


def _iou_over_first_area(boxes_a, boxes_b):
    top_left = torch.maximum(boxes_a[:, None, :2], boxes_b[None, :, :2])
    bottom_right = torch.minimum(boxes_a[:, None, 2:], boxes_b[None, :, 2:])
    intersection = (bottom_right - top_left).clamp(min=0).prod(dim=-1)
    return intersection / (boxes_a[:, 2:] - boxes_a[:, :2]).prod(dim=-1)[:, None]


CH03 = [
    (ch03.check_box_iou, solution03.box_iou, [
        ("no clamp on the intersection", _iou_without_clamp),
        ("intersection over the first box's area", _iou_over_first_area),
    ]),
]


# --- chapter 04 -------------------------------------------------------------------------------------------
from torch import nn

from course_utils.exercises import ch04
from solutions import ch04 as solution04


def _block_without_padding(c_in, c_out):
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(),
                         nn.Conv2d(c_out, c_out, 3, bias=False), nn.BatchNorm2d(c_out), nn.ReLU())


def _block_with_bias(c_in, c_out):
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU(),
                         nn.Conv2d(c_out, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU())


def _block_without_final_relu(c_in, c_out):
    first, second = solution04.unet_block(c_in, c_out)
    return nn.Sequential(first, *list(second)[:-1])  # conv → BN → ReLU, conv → BN (no ReLU)


CH04 = [
    (ch04.check_unet_block, solution04.unet_block, [
        ("no padding", _block_without_padding),
        ("redundant conv biases", _block_with_bias),
        ("no final ReLU", _block_without_final_relu),
        ("a single convolution", lambda c_in, c_out: nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU())),
    ]),
]


# --- chapter 05 -------------------------------------------------------------------------------------------

from course_utils.exercises import ch05
from solutions import ch05 as solution05


def _q_sample_first_t_only(x0, t, noise, alpha_bars):
    return solution05.q_sample(x0, t[:1].expand(len(t)), noise, alpha_bars)


CH05 = [
    (ch05.check_q_sample, solution05.q_sample, [
        ("variances as weights", lambda x0, t, n, bars: bars[t].view(-1, 1, 1, 1) * x0 + (1 - bars[t]).view(-1, 1, 1, 1) * n),
        ("first image's t for all", _q_sample_first_t_only),
        ("no noise", lambda x0, t, n, bars: bars[t].sqrt().view(-1, 1, 1, 1) * x0),
    ]),
]



from course_utils.exercises import ch06
from solutions import ch06 as solution06


def _attention_unscaled(q, k, v, mask=None):
    return solution06.attention(q * q.shape[-1] ** 0.5, k, v, mask)


def _attention_columns(q, k, v, mask=None):
    weights = (q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5).softmax(dim=-2)
    return weights @ v, weights


def _attention_inverted_mask(q, k, v, mask=None):
    return solution06.attention(q, k, v, None if mask is None else ~mask)


def _attention_mask_ignored(q, k, v, mask=None):
    return solution06.attention(q, k, v)


CH06 = [
    (ch06.check_attention, solution06.attention, [
        ("not scaled", _attention_unscaled),
        ("softmax over the queries", _attention_columns),
        ("mask inverted", _attention_inverted_mask),
        ("mask ignored", _attention_mask_ignored),
        ("weights only", lambda q, k, v, mask=None: solution06.attention(q, k, v, mask)[1]),
    ]),
]



from course_utils.exercises import ch07
from solutions import ch07 as solution07


def _sigmoid_loss_mean(images, texts, scale, bias):
    logits = scale * images @ texts.T + bias
    return -F.logsigmoid((2 * torch.eye(len(images)) - 1) * logits).mean()


def _sigmoid_loss_positives_only(images, texts, scale, bias):
    return -F.logsigmoid((scale * images @ texts.T + bias).diagonal()).sum() / len(images)


def _sigmoid_loss_detached(images, texts, scale, bias):
    return torch.tensor(solution07.sigmoid_loss(images, texts, scale, bias).item())


def _median_rank_zero_based(similarity, relevant):
    return solution07.median_rank(similarity, relevant) - 1


def _median_rank_ascending(similarity, relevant):
    return solution07.median_rank(-similarity, relevant)


CH07 = [
    (ch07.check_sigmoid_loss, solution07.sigmoid_loss, [
        ("mean over N² cells", _sigmoid_loss_mean),
        ("positives only", _sigmoid_loss_positives_only),
        ("no bias", lambda i, t, s, b: solution07.sigmoid_loss(i, t, s, torch.tensor(0.0))),
        ("softmax loss instead", lambda i, t, s, b: F.cross_entropy(s * i @ t.T, torch.arange(len(i)))),
        ("detached", _sigmoid_loss_detached),
    ]),
    (ch07.check_class_embeddings, solution07.class_embeddings, [
        ("mean not renormalised", lambda p: F.normalize(p, dim=-1).mean(1)),
        ("normalised only after the mean", lambda p: F.normalize(p.mean(1), dim=-1)),
        ("averaged over the classes", lambda p: F.normalize(F.normalize(p, dim=-1).mean(0), dim=-1)),
        ("first prompt only", lambda p: F.normalize(p[:, 0], dim=-1)),
    ]),
    (ch07.check_median_rank, solution07.median_rank, [
        ("zero-based", _median_rank_zero_based),
        ("ascending", _median_rank_ascending),
        ("tensor", lambda s, r: ((s > s.gather(1, r[:, None])).sum(1) + 1).float().median()),
        ("mean rank", lambda s, r: ((s > s.gather(1, r[:, None])).sum(1) + 1).float().mean().item()),
        ("over the queries", lambda s, r: ((s > s.gather(1, r[:, None]).T).sum(0)[: len(r)] + 1).float().median().item()),
    ]),
]


from course_utils.exercises import ch08
from solutions import ch08 as solution08


def _export_static_batch(model, example, path):
    model.eval()
    torch.onnx.export(model, (example,), path, input_names=["images"], output_names=["logits"], dynamo=False)


def _export_in_train_mode(model, example, path):
    torch.onnx.export(model, (example,), path, input_names=["images"], output_names=["logits"],
                      dynamic_axes={"images": {0: "batch"}, "logits": {0: "batch"}}, dynamo=False,
                      training=torch.onnx.TrainingMode.TRAINING, do_constant_folding=False)


def _export_default_names(model, example, path):
    model.eval()
    torch.onnx.export(model, (example,), path, dynamic_axes={"input": {0: "batch"}}, input_names=["input"], dynamo=False)


def _quantize_without_zero(x):
    low, high = float(x.min()), float(x.max())
    scale = (high - low) / 255
    zero_point = int(round(-low / scale))
    return torch.clamp(torch.round(x / scale) + zero_point, 0, 255).to(torch.uint8), scale, zero_point


def _quantize_symmetric_int8(x):
    scale = float(x.abs().max()) / 127
    return torch.clamp(torch.round(x / scale), -128, 127).to(torch.int8), scale, 0


def _quantize_truncating(x):
    q, scale, zero_point = solution08.quantize_uint8(x)
    low = min(float(x.min()), 0.0)
    return ((x - low) / scale).floor().clamp(0, 255).to(torch.uint8), scale, zero_point


CH08 = [
    (ch08.check_export_dynamic, solution08.export_dynamic, [
        ("static batch", _export_static_batch),
        ("train mode", _export_in_train_mode),
        ("default names", _export_default_names),
        ("writes nothing", lambda model, example, path: None),
    ]),
    (ch08.check_quantize_uint8, solution08.quantize_uint8, [
        ("range without 0", _quantize_without_zero),
        ("symmetric int8", _quantize_symmetric_int8),
        ("floor instead of round", _quantize_truncating),
    ]),
]


from course_utils.exercises import ch09
from solutions import ch09 as solution09


def _composite_own_alpha_in_transmittance(densities, colours, deltas):
    alphas = 1 - torch.exp(-densities * deltas)
    weights = torch.cumprod(1 - alphas, dim=1) * alphas
    return (weights[..., None] * colours).sum(1), weights


def _composite_without_deltas(densities, colours, deltas):
    return solution09.composite(densities, colours, torch.ones_like(deltas))


def _composite_alphas_only(densities, colours, deltas):
    alphas = 1 - torch.exp(-densities * deltas)
    return (alphas[..., None] * colours).sum(1), alphas


CH09 = [
    (ch09.check_composite, solution09.composite, [
        ("own alpha in T", _composite_own_alpha_in_transmittance),
        ("no deltas", _composite_without_deltas),
        ("alphas only", _composite_alphas_only),
    ]),
]


@pytest.mark.parametrize("checker, reference, wrong_answers", CH00 + CH01 + CH02 + CH03 + CH04 + CH05 + CH06 + CH07 + CH08 + CH09,
                         ids=lambda v: getattr(v, "__name__", ""))
def test_checker_accepts_solution_and_rejects_typical_mistakes(checker, reference, wrong_answers):
    assert checker(reference).status == "passed"
    assert checker(_not_solved).status == "not solved"
    for description, wrong in wrong_answers:
        assert checker(wrong).status == "failed", f"{checker.__name__} accepted a wrong answer: {description}"



# --- issue 19: right answers in other styles pass; wrong answers the cases above never tried fail ------
# Each entry: checker, [(description, right answer written in another style)], [(description, wrong answer)].

import math
import statistics

from torchvision import ops

from course_utils.models import conv_bn_relu


def _train_step_manual_sgd(model, inputs, targets, optimizer, loss_fn):
    model.zero_grad()
    loss = loss_fn(model(inputs), targets)
    loss.backward()
    with torch.no_grad():
        for p in model.parameters():
            p -= 0.1 * p.grad
    return loss.item()


def _train_step_loss_after(model, inputs, targets, optimizer, loss_fn):
    _step(model, inputs, targets, optimizer, loss_fn)
    with torch.no_grad():
        return loss_fn(model(inputs), targets).item()


def _train_step_model_zero_grad(model, inputs, targets, optimizer, loss_fn):
    model.zero_grad(set_to_none=False)
    loss = loss_fn(model(inputs), targets)
    loss.backward()
    optimizer.step()
    return float(loss.detach().numpy())


def _conv2d_loops(image, kernel):
    k = kernel.shape[0]
    p = k // 2
    padded = torch.zeros(image.shape[0] + 2 * p, image.shape[1] + 2 * p, dtype=image.dtype)
    padded[p:p + image.shape[0], p:p + image.shape[1]] = image
    out = torch.zeros_like(image)
    for y in range(image.shape[0]):
        for x in range(image.shape[1]):
            out[y, x] = (padded[y:y + k, x:x + k] * kernel).sum()
    return out


def _conv2d_in_place_padding(image, kernel):
    image -= 0  # harmless-looking, but the in-place pattern below changes the caller's tensor
    image.clamp_(min=-1e9)
    image.mul_(1.0001)
    return solution01.conv2d(image, kernel)


def _equalize_with_cv2_style_float64(image):
    histogram = np.bincount(image.ravel(), minlength=256).astype(np.float64)
    cdf = histogram.cumsum()
    cdf_min = cdf[histogram > 0][0]
    if cdf_min == image.size:
        return image.copy()
    lut = np.clip(np.rint((cdf - cdf_min) * 255.0 / (image.size - cdf_min)), 0, 255).astype(np.uint8)
    return lut[image]


def _accumulate_by_chunk_count(model, loss_fn, inputs, targets, micro_batches):
    model.zero_grad()
    for x, y in zip(inputs.chunk(micro_batches), targets.chunk(micro_batches)):
        (loss_fn(model(x), y) / micro_batches).backward()


def _accumulate_without_splitting(model, loss_fn, inputs, targets, micro_batches):
    model.zero_grad()
    loss_fn(model(inputs), targets).backward()


def _accumulate_tensor_split(model, loss_fn, inputs, targets, micro_batches):
    for p in model.parameters():
        p.grad = None
    for x, y in zip(inputs.tensor_split(micro_batches), targets.tensor_split(micro_batches)):
        (loss_fn(model(x), y) * len(x) / len(inputs)).backward()


def _accumulate_sum_reduction(model, loss_fn, inputs, targets, micro_batches):
    model.zero_grad()
    for x, y in zip(inputs.chunk(micro_batches), targets.chunk(micro_batches)):
        (nn.functional.cross_entropy(model(x), y, reduction="sum") / len(inputs)).backward()


def _box_iou_loops(boxes_a, boxes_b):
    out = torch.zeros(len(boxes_a), len(boxes_b), dtype=torch.float64)
    for i, a in enumerate(boxes_a.tolist()):
        for j, b in enumerate(boxes_b.tolist()):
            w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
            h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
            union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - w * h
            out[i, j] = w * h / union
    return out


class _UNetBlockClass(nn.Module):
    """Another style: named layers registered in another order, functional ReLU."""

    def __init__(self, c_in, c_out):
        super().__init__()
        self.norm2 = nn.BatchNorm2d(c_out)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding="same", bias=False)
        self.norm1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)

    def forward(self, x):
        return F.relu(self.norm2(self.conv2(F.relu(self.norm1(self.conv1(x))))))


class _UNetBlockNoMiddleReLU(_UNetBlockClass):
    def forward(self, x):
        return F.relu(self.norm2(self.conv2(self.norm1(self.conv1(x)))))


class _UNetBlockUnusedNorm(_UNetBlockClass):
    def forward(self, x):
        return F.relu(self.norm2(self.conv2(F.relu(self.conv1(x)))))


class _UNetBlockSharedNorm(_UNetBlockClass):
    def forward(self, x):
        return F.relu(self.norm2(self.conv2(F.relu(self.norm2(self.conv1(x))))))


class _UNetBlockTypo(_UNetBlockClass):
    forward = nn.Module.forward  # nn.Module's own: raises NotImplementedError

    def foward(self, x):  # misspelt: never called
        return super().forward(x)


def _unet_reflect_padding(c_in, c_out):
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False, padding_mode="reflect"),
                         nn.BatchNorm2d(c_out), nn.ReLU(),
                         nn.Conv2d(c_out, c_out, 3, padding=1, bias=False, padding_mode="reflect"),
                         nn.BatchNorm2d(c_out), nn.ReLU())


def _unet_relu_before_norm(c_in, c_out):
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.ReLU(), nn.BatchNorm2d(c_out),
                         nn.Conv2d(c_out, c_out, 3, padding=1, bias=False), nn.ReLU(), nn.BatchNorm2d(c_out))


def _q_sample_gather(x0, t, noise, alpha_bars):
    bars = torch.gather(alpha_bars.double(), 0, t).reshape(-1, *[1] * (x0.dim() - 1))
    return (torch.sqrt(bars) * x0.double() + torch.sqrt(1 - bars) * noise.double())


def _q_sample_4d_only(x0, t, noise, alpha_bars):
    bars = alpha_bars[t].view(-1, 1, 1, 1)
    return bars.sqrt() * x0 + (1 - bars).sqrt() * noise


def _q_sample_in_place(x0, t, noise, alpha_bars):
    bars = alpha_bars[t].view(-1, *([1] * (x0.ndim - 1)))
    return x0.mul_(bars.sqrt()).add_((1 - bars).sqrt() * noise)


def _q_sample_t_minus_one(x0, t, noise, alpha_bars):
    return solution05.q_sample(x0, (t - 1).clamp(min=0), noise, alpha_bars)


def _attention_einsum_float64(q, k, v, mask=None):
    scores = torch.einsum("...qd,...kd->...qk", q.double(), k.double()) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(mask.logical_not(), -1e9)
    weights = torch.softmax(scores, dim=-1)
    return torch.einsum("...qk,...kd->...qd", weights, v.double()), weights


def _attention_scaled_by_value_dim(q, k, v, mask=None):
    scores = q @ k.transpose(-2, -1) / v.shape[-1] ** 0.5
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = scores.softmax(-1)
    return weights @ v, weights


def _attention_four_dims_only(q, k, v, mask=None):
    scores = q @ k.permute(0, 1, 3, 2) / q.shape[-1] ** 0.5
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = scores.softmax(-1)
    return weights @ v, weights


def _attention_in_place_scale(q, k, v, mask=None):
    q /= q.shape[-1] ** 0.5
    return solution06.attention(q * q.shape[-1] ** 0.5, k, v, mask)


def _sigmoid_loss_loops(images, texts, scale, bias):
    n = len(images)
    total = 0
    for i in range(n):
        for j in range(n):
            label = 1.0 if i == j else -1.0
            total = total + F.softplus(-label * (scale * images[i] @ texts[j] + bias))
    return total / n


def _sigmoid_loss_detached_scale(images, texts, scale, bias):
    return solution07.sigmoid_loss(images, texts, scale.detach(), bias.detach())


def _sigmoid_loss_bias_scaled(images, texts, scale, bias):
    logits = scale * (images @ texts.T + bias)
    return -F.logsigmoid((2 * torch.eye(len(images)) - 1) * logits).sum() / len(images)


def _class_embeddings_numpy(prompts):
    x = prompts.detach().numpy()
    x = x / np.linalg.norm(x, axis=-1, keepdims=True)
    mean = x.mean(axis=1)
    return torch.from_numpy(mean / np.linalg.norm(mean, axis=-1, keepdims=True))


def _class_embeddings_in_place(prompts):
    prompts /= prompts.norm(dim=-1, keepdim=True)
    return F.normalize(prompts.mean(1), dim=-1)


def _class_embeddings_sum_not_mean(prompts):
    return F.normalize(prompts, dim=-1).sum(1)


def _median_rank_argsort(similarity, relevant):
    order = similarity.argsort(dim=1, descending=True)
    ranks = (order == relevant[:, None]).nonzero()[:, 1] + 1
    return statistics.median(ranks.tolist())


def _median_rank_ties_count(similarity, relevant):
    ranks = (similarity >= similarity.gather(1, relevant[:, None])).sum(1)
    return float(ranks.float().median()) + (1.0 if similarity.shape[1] > 4 else 0.0)


def _median_rank_first_query(similarity, relevant):
    return float((similarity[0] > similarity[0, relevant[0]]).sum() + 1)


def _median_rank_upper_median(similarity, relevant):
    ranks = sorted(((similarity > similarity.gather(1, relevant[:, None])).sum(1) + 1).tolist())
    return float(ranks[-1] if len(ranks) > 1 else ranks[0])


def _quantize_numpy_zero_point(x):
    q, scale, zero_point = solution08.quantize_uint8(x)
    return q, np.float64(scale), np.int64(zero_point)


def _quantize_truncated_zero_point(x):
    low, high = min(float(x.min()), 0.0), max(float(x.max()), 0.0)
    scale = (high - low) / 255 if high > low else 1.0
    zero_point = int(-low / scale)
    return torch.clamp(torch.round(x / scale) + zero_point, 0, 255).to(torch.uint8), scale, zero_point


def _quantize_float_zero_point(x):
    q, scale, zero_point = solution08.quantize_uint8(x)
    return q, scale, float(zero_point)


def _quantize_nan_for_zeros(x):
    low, high = min(float(x.min()), 0.0), max(float(x.max()), 0.0)
    scale = (high - low) / 255
    zero_point = round(-low / scale) if scale else 0
    return torch.clamp(torch.round(x / scale) + zero_point, 0, 255).nan_to_num(0).to(torch.uint8), scale, zero_point


def _composite_loop(densities, colours, deltas):
    rays, samples = densities.shape
    weights = torch.zeros(rays, samples, dtype=torch.float64)
    for r in range(rays):
        transmittance = 1.0
        for s in range(samples):
            alpha = 1 - math.exp(-float(densities[r, s]) * float(deltas[r, s]))
            weights[r, s] = transmittance * alpha
            transmittance *= 1 - alpha
    return (weights[..., None] * colours.double()).sum(1), weights


def _composite_exclusive_cumsum(densities, colours, deltas):
    optical = densities * deltas
    transmittance = torch.exp(-(torch.cumsum(optical, 1) - optical))
    weights = transmittance * (1 - torch.exp(-optical))
    return (weights[..., None] * colours).sum(1), weights


def _composite_in_place(densities, colours, deltas):
    densities.mul_(deltas)
    return solution09.composite(densities, colours, torch.ones_like(deltas))


def _composite_normalised_weights(densities, colours, deltas):
    _, weights = solution09.composite(densities, colours, deltas)
    weights = weights / weights.sum(1, keepdim=True).clamp(min=1e-12)
    return (weights[..., None] * colours).sum(1), weights


STYLES = [
    (ch00.check_pairwise_squared_distances,
     [("expansion ‖a‖² + ‖b‖² − 2ab", lambda a, b: (a * a).sum(1)[:, None] + (b * b).sum(1)[None] - 2 * a @ b.T),
      ("cdist squared", lambda a, b: torch.cdist(a, b) ** 2)],
     [("absolute differences", lambda a, b: (a[:, None] - b[None]).abs().sum(-1)),
      ("expansion with +2ab", lambda a, b: (a * a).sum(1)[:, None] + (b * b).sum(1)[None] + 2 * a @ b.T),
      ("mean over D", lambda a, b: ((a[:, None] - b[None]) ** 2).mean(-1)),
      ("float32 precision loss in float64", lambda a, b: (((a[:, None] - b[None]) ** 2).sum(-1)).half().to(a.dtype))]),
    (ch00.check_train_step,
     [("model.zero_grad and a NumPy float", _train_step_model_zero_grad)],
     [("hand-written SGD update", _train_step_manual_sgd),
      ("loss after the update", _train_step_loss_after),
      ("two optimiser steps", lambda m, x, y, opt, f: (_step(m, x, y, opt, f), opt.step())[0])]),
    (ch01.check_conv2d,
     [("pixel loops", _conv2d_loops), ("F.conv2d", lambda im, k: _conv(im, k, k.shape[0] // 2))],
     [("changes the input in place", _conv2d_in_place_padding),
      ("float32 result of float64 input rounded", lambda im, k: _conv(im.float(), k.float(), k.shape[0] // 2).half().to(im.dtype)),
      ("padding 2 for every kernel size", lambda im, k: _conv(im, k, 2)[: im.shape[0], : im.shape[1]]
       if k.shape[0] != 5 else _conv(im, k, 2))]),
    (ch01.check_equalize_histogram,
     [("float64 LUT", _equalize_with_cv2_style_float64), ("cv2 itself", cv2.equalizeHist)],
     [("floor instead of round", lambda im: _lut_floor(im)),
      ("normalises by N, not N − cdf_min", lambda im: _lut_by_n(im)),
      ("constant image → zeros", lambda im: _lut_equalize(im) if len(np.unique(im)) > 1 else np.zeros_like(im))]),
    (ch02.check_accumulate_gradients,
     [("tensor_split and weights", _accumulate_tensor_split), ("sum reduction / N", _accumulate_sum_reduction)],
     [("divides by the chunk count", _accumulate_by_chunk_count),
      ("does not split", _accumulate_without_splitting),
      ("ignores micro_batches (always 4)", lambda m, f, x, y, k: solution02.accumulate_gradients(m, f, x, y, 4))]),
    (ch03.check_box_iou,
     [("Python loops, float64 result", _box_iou_loops), ("torchvision", ops.box_iou)],
     [("hard-coded float32", lambda a, b: solution03.box_iou(a.float(), b.float()).half().to(a.dtype)),
      ("union without the intersection subtracted", lambda a, b: _iou_union_sum(a, b)),
      ("square matrix assumed", lambda a, b: solution03.box_iou(a, a if len(a) == len(b) else b[:1]))]),
    (ch04.check_unet_block,
     [("class with named layers", _UNetBlockClass), ("course_utils.models.conv_bn_relu",
                                                     lambda c_in, c_out: nn.Sequential(conv_bn_relu(c_in, c_out), conv_bn_relu(c_out, c_out)))],
     [("no middle ReLU", _UNetBlockNoMiddleReLU), ("a BatchNorm built but never called", _UNetBlockUnusedNorm),
      ("one BatchNorm used twice", _UNetBlockSharedNorm), ("reflect padding", _unet_reflect_padding),
      ("ReLU before BatchNorm", _unet_relu_before_norm)]),
    (ch05.check_q_sample,
     [("gather, float64 result", _q_sample_gather)],
     [("4-D inputs only", _q_sample_4d_only), ("changes x0 in place", _q_sample_in_place),
      ("t − 1", _q_sample_t_minus_one)]),
    (ch06.check_attention,
     [("einsum in float64 with -1e9", _attention_einsum_float64)],
     [("scaled by √d of the values", _attention_scaled_by_value_dim), ("4-D inputs only", _attention_four_dims_only),
      ("scales q in place", _attention_in_place_scale)]),
    (ch07.check_sigmoid_loss,
     [("double loop with softplus", _sigmoid_loss_loops)],
     [("scale and bias detached", _sigmoid_loss_detached_scale), ("bias multiplied by the scale", _sigmoid_loss_bias_scaled),
      ("float32 only", lambda i, t, s, b: solution07.sigmoid_loss(i.float(), t.float(), s.float(), b.float()).half().to(i.dtype))]),
    (ch07.check_class_embeddings,
     [("NumPy", _class_embeddings_numpy)],
     [("normalises in place", _class_embeddings_in_place), ("sum, not renormalised", _class_embeddings_sum_not_mean),
      ("hard-coded 4 prompts", lambda p: F.normalize(F.normalize(p, dim=-1)[:, :4].mean(1), dim=-1))]),
    (ch07.check_median_rank,
     [("argsort and statistics.median", _median_rank_argsort)],
     [("ties counted against", _median_rank_ties_count), ("first query only", _median_rank_first_query),
      ("worst rank", _median_rank_upper_median)]),
    (ch08.check_quantize_uint8,
     [("NumPy scale and zero point", _quantize_numpy_zero_point)],
     [("int()-truncated zero point", _quantize_truncated_zero_point), ("float zero point", _quantize_float_zero_point),
      ("NaN scale for all zeros", _quantize_nan_for_zeros)]),
    (ch09.check_composite,
     [("Python loops, float64", _composite_loop), ("exclusive cumsum of optical depth", _composite_exclusive_cumsum)],
     [("changes densities in place", _composite_in_place), ("weights normalised to sum 1", _composite_normalised_weights),
      ("float16 precision", lambda d, c, de: tuple(v.half().to(d.dtype) for v in solution09.composite(d, c, de)))]),
]


def _lut_floor(image):
    histogram = np.bincount(image.ravel(), minlength=256)
    cdf = np.cumsum(histogram)
    cdf_min = cdf[np.flatnonzero(histogram)[0]]
    if cdf_min == image.size:
        return image.copy()
    return np.floor((cdf - cdf_min) * 255 / (image.size - cdf_min)).astype(np.uint8)[image]


def _lut_by_n(image):
    histogram = np.bincount(image.ravel(), minlength=256)
    cdf = np.cumsum(histogram)
    cdf_min = cdf[np.flatnonzero(histogram)[0]]
    if cdf_min == image.size:
        return image.copy()
    return np.rint((cdf - cdf_min) * 255 / image.size).astype(np.uint8)[image]


def _iou_union_sum(boxes_a, boxes_b):
    iou = solution03.box_iou(boxes_a, boxes_b)
    area_a = (boxes_a[:, 2:] - boxes_a[:, :2]).prod(-1)
    area_b = (boxes_b[:, 2:] - boxes_b[:, :2]).prod(-1)
    union = area_a[:, None] + area_b[None] - 0 * iou
    intersection = iou * (area_a[:, None] + area_b[None]) / (1 + iou)
    return intersection / union


def _judge(checker, right_answers, wrong_answers):
    for description, right in right_answers:
        result = checker(right)
        assert result.status == "passed", f"{checker.__name__} rejected a right answer ({description}): {result.message}"
    assert len(wrong_answers) >= 3
    for description, wrong in wrong_answers:
        result = checker(wrong)
        assert result.status == "failed", f"{checker.__name__} accepted a wrong answer: {description}"


@pytest.mark.parametrize("checker, right_answers, wrong_answers", STYLES, ids=lambda v: getattr(v, "__name__", ""))
def test_right_answers_in_other_styles_pass_and_untried_wrong_answers_fail(checker, right_answers, wrong_answers):
    _judge(checker, right_answers, wrong_answers)


# The transfer exercises (issue 19, point 3) keep their cases in one file per group of chapters; each entry: the
# checker, the reference and right answers in other styles, and plausible wrong answers.
TRANSFER_CASES = [case for module_name in ("test_exercises_transfer_00_03", "test_exercises_transfer_04_06",
                                           "test_exercises_transfer_07_09")
                  for case in importlib.import_module(module_name).TRANSFER_CASES]


@pytest.mark.parametrize("checker, right_answers, wrong_answers", TRANSFER_CASES,
                         ids=lambda v: getattr(v, "__name__", ""))
def test_transfer_checkers_accept_right_answers_and_reject_wrong_ones(checker, right_answers, wrong_answers):
    assert checker(_not_solved).status == "not solved"
    assert len(right_answers) >= 2, "the reference solution and at least one right answer in another style"
    _judge(checker, right_answers, wrong_answers)


def test_every_checker_has_styles_and_wrong_answers():
    import inspect

    checkers = {f for chapter in (ch00, ch01, ch02, ch03, ch04, ch05, ch06, ch07, ch08, ch09)
                for name, f in inspect.getmembers(chapter, inspect.isfunction) if name.startswith("check_")}
    covered = {checker for checker, _, _ in STYLES + TRANSFER_CASES}
    assert checkers - covered == {ch08.check_export_dynamic}  # slow (ONNX export): its cases are in CH08 above


def test_misspelt_forward_is_a_failure_not_unsolved():
    result = ch04.check_unet_block(_UNetBlockTypo)
    assert result.status == "failed" and "forward" in result.message


def test_hints_only_when_the_value_proves_the_cause():
    assert "chunk" in ch02.check_accumulate_gradients(_accumulate_by_chunk_count).message
    assert "int() truncates" in ch08.check_quantize_uint8(_quantize_truncated_zero_point).message
