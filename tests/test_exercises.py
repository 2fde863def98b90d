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


def _nms_greater_equal(boxes, scores, iou_threshold):
    order = torch.sort(scores, descending=True, stable=True).indices
    iou = solution03.box_iou(boxes, boxes)
    removed, keep = torch.zeros(len(boxes), dtype=torch.bool), []
    for i in order.tolist():
        if not removed[i]:
            keep.append(i)
            removed |= iou[i] >= iou_threshold
    return torch.tensor(keep, dtype=torch.int64)


def _nms_index_order(boxes, scores, iou_threshold):
    return torch.sort(solution03.nms(boxes, scores, iou_threshold)).values


def _nms_unstable_ties(boxes, scores, iou_threshold):
    order = torch.argsort(scores + 1e-7 * torch.arange(len(scores)), descending=True)  # later index wins ties
    iou = solution03.box_iou(boxes, boxes)
    removed, keep = torch.zeros(len(boxes), dtype=torch.bool), []
    for i in order.tolist():
        if not removed[i]:
            keep.append(i)
            removed |= iou[i] > iou_threshold
    return torch.tensor(keep, dtype=torch.int64)


def _ap_without_envelope(scores, true_positive, n_ground_truth):
    order = torch.sort(scores, descending=True, stable=True).indices
    hits = true_positive[order].double().cumsum(0)
    precision, recall = hits / torch.arange(1, len(hits) + 1), hits / n_ground_truth
    return float((torch.diff(recall, prepend=torch.zeros(1, dtype=recall.dtype)) * precision).sum())


def _ap_unsorted(scores, true_positive, n_ground_truth):
    return solution03.average_precision(torch.arange(len(scores), 0, -1).float(), true_positive, n_ground_truth)


def _ap_recall_over_found(scores, true_positive, n_ground_truth):
    return solution03.average_precision(scores, true_positive, max(int(true_positive.sum()), 1))


CH03 = [
    (ch03.check_box_iou, solution03.box_iou, [
        ("no clamp on the intersection", _iou_without_clamp),
        ("intersection over the first box's area", _iou_over_first_area),
    ]),
    (ch03.check_nms, solution03.nms, [
        ("removes at IoU == threshold", _nms_greater_equal),
        ("returns indices in index order", _nms_index_order),
        ("later index wins ties", _nms_unstable_ties),
    ]),
    (ch03.check_average_precision, solution03.average_precision, [
        ("no precision envelope", _ap_without_envelope),
        ("ignores the scores", _ap_unsorted),
        ("recall over found objects", _ap_recall_over_found),
    ]),
]


# --- chapter 04 -------------------------------------------------------------------------------------------
from torch import nn

from course_utils.exercises import ch04
from solutions import ch04 as solution04


def _iou_per_image(predictions, targets, num_classes):
    return torch.stack([solution04.per_class_iou(p, t, num_classes) for p, t in zip(predictions, targets)]).mean(0)


def _precision_not_iou(predictions, targets, num_classes):
    confusion = torch.bincount(targets.flatten() * num_classes + predictions.flatten(),
                               minlength=num_classes ** 2).reshape(num_classes, num_classes)
    return confusion.diag().float() / confusion.sum(0).float()


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
    (ch04.check_dice_coefficient, solution04.dice_coefficient, [
        ("returns the loss", lambda p, t: 1 - solution04.dice_coefficient(p, t)),
        ("IoU instead of Dice", lambda p, t: float((p & t).sum() / max(int((p | t).sum()), 1)) if (p | t).any() else 1.0),
        ("forgot the factor 2", lambda p, t: float((p & t).sum() / (p.sum() + t.sum())) if (p.sum() + t.sum()) else 1.0),
    ]),
    (ch04.check_per_class_iou, solution04.per_class_iou, [
        ("averaged per image", _iou_per_image),
        ("precision instead of IoU", _precision_not_iou),
    ]),
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


def _penalty_squared_norm(critic, real, fake):
    mix = torch.rand(real.shape[0], 1)
    between = (mix * real + (1 - mix) * fake).requires_grad_(True)
    gradients, = torch.autograd.grad(critic(between).sum(), between, create_graph=True)
    return ((gradients.square().sum(dim=1) - 1) ** 2).mean()


def _penalty_one_norm_for_the_batch(critic, real, fake):
    mix = torch.rand(real.shape[0], 1)
    between = (mix * real + (1 - mix) * fake).requires_grad_(True)
    gradients, = torch.autograd.grad(critic(between).sum(), between, create_graph=True)
    return (gradients.norm() / real.shape[0] ** 0.5 - 1) ** 2


def _penalty_not_differentiable(critic, real, fake):
    return solution05.gradient_penalty(critic, real, fake).detach()


def _q_sample_first_t_only(x0, t, noise, alpha_bars):
    return solution05.q_sample(x0, t[:1].expand(len(t)), noise, alpha_bars)


CH05 = [
    (ch05.check_discriminator_loss, solution05.discriminator_loss, [
        ("swapped targets", lambda r, f: solution05.discriminator_loss(f, r)),
        ("fake term missing", lambda r, f: F.binary_cross_entropy_with_logits(r, torch.ones_like(r))),
        ("averaged terms", lambda r, f: solution05.discriminator_loss(r, f) / 2),
        ("saturating generator-style sign", lambda r, f: -solution05.discriminator_loss(r, f)),
    ]),
    (ch05.check_gradient_penalty, solution05.gradient_penalty, [
        ("squared norm", _penalty_squared_norm),
        ("one norm for the whole batch", _penalty_one_norm_for_the_batch),
        ("detached", _penalty_not_differentiable),
    ]),
    (ch05.check_q_sample, solution05.q_sample, [
        ("variances as weights", lambda x0, t, n, bars: bars[t].view(-1, 1, 1, 1) * x0 + (1 - bars[t]).view(-1, 1, 1, 1) * n),
        ("first image's t for all", _q_sample_first_t_only),
        ("no noise", lambda x0, t, n, bars: bars[t].sqrt().view(-1, 1, 1, 1) * x0),
    ]),
]



from einops import rearrange

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


def _patchify_channels_first(images, p):
    return rearrange(images, "b c (h p1) (w p2) -> b (h w) (c p1 p2)", p1=p, p2=p)


def _patchify_plain_reshape(images, p):
    n, c = images.shape[:2]
    return images.reshape(n, c, -1, p * p).permute(0, 2, 3, 1).reshape(n, -1, p * p * c)


def _patchify_height_check_only(images, p):
    if images.shape[2] % p:
        raise ValueError("height not divisible")
    return images.unfold(2, p, p).unfold(3, p, p).permute(0, 2, 3, 4, 5, 1).flatten(3).flatten(1, 2)


def _block_post_norm(tokens, block):
    tokens = block.norm1(tokens + block.attn(tokens))
    return block.norm2(tokens + block.mlp(tokens))


def _block_one_norm(tokens, block):
    tokens = tokens + block.attn(block.norm1(tokens))
    return tokens + block.mlp(block.norm1(tokens))


CH06 = [
    (ch06.check_attention, solution06.attention, [
        ("not scaled", _attention_unscaled),
        ("softmax over the queries", _attention_columns),
        ("mask inverted", _attention_inverted_mask),
        ("mask ignored", _attention_mask_ignored),
        ("weights only", lambda q, k, v, mask=None: solution06.attention(q, k, v, mask)[1]),
    ]),
    (ch06.check_patchify, solution06.patchify, [
        ("channels first", _patchify_channels_first),
        ("plain reshape", _patchify_plain_reshape),
        ("column-major patches",
         lambda x, p: rearrange(x, "b c (h p1) (w p2) -> b (w h) (p1 p2 c)", p1=p, p2=p)),
        ("no size check", lambda x, p: x.unfold(2, p, p).unfold(3, p, p).permute(0, 2, 3, 4, 5, 1).flatten(3).flatten(1, 2)),
        ("checks the height only", _patchify_height_check_only),
    ]),
    (ch06.check_pre_norm_block, solution06.pre_norm_block, [
        ("post-norm", _block_post_norm),
        ("one norm twice", _block_one_norm),
        ("no residuals", lambda x, b: b.mlp(b.norm2(b.attn(b.norm1(x))))),
        ("attention only", lambda x, b: x + b.attn(b.norm1(x))),
        ("calls the block itself", lambda x, b: b(x)),
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


def _measure_including_warmup(fn, warmup=3, repeats=20):
    times = solution08.timed_calls(fn, 0, warmup + repeats)
    return times[len(times) // 2], times[round(0.9 * (len(times) - 1))]


def _measure_seconds(fn, warmup=3, repeats=20):
    median, p90 = solution08.measure(fn, warmup, repeats)
    return median / 1000, p90 / 1000


def _measure_mean_for_both(fn, warmup=3, repeats=20):
    median, _ = solution08.measure(fn, warmup, repeats)
    return median, median


def _measure_mean_and_p90(fn, warmup=3, repeats=20):
    times = solution08.timed_calls(fn, warmup, repeats)
    return sum(times) / len(times), times[round(0.9 * (len(times) - 1))]


def _measure_median_and_max(fn, warmup=3, repeats=20):
    times = solution08.timed_calls(fn, warmup, repeats)
    return times[len(times) // 2], times[-1]


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
    (ch08.check_measure, solution08.measure, [
        ("warm-up timed", _measure_including_warmup),
        ("seconds", _measure_seconds),
        ("median twice", _measure_mean_for_both),
        ("no warm-up call", lambda fn, warmup=3, repeats=20: solution08.measure(fn, 0, repeats)),
        ("mean for the median", _measure_mean_and_p90),
        ("max for p90", _measure_median_and_max),
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
    (ch09.check_lucas_kanade_step, solution09.lucas_kanade_step, [
        ("sign flipped", lambda ix, iy, it: tuple(-v for v in solution09.lucas_kanade_step(ix, iy, it))),
        ("swapped", lambda ix, iy, it: solution09.lucas_kanade_step(ix, iy, it)[::-1]),
        ("two pixels only", lambda ix, iy, it: solution09.lucas_kanade_step(ix[:2, :1], iy[:2, :1], it[:2, :1])),
    ]),
    (ch09.check_bad_pixel_rate, solution09.bad_pixel_rate, [
        ("counts invalid pixels", lambda e, t, thr=2.0: float((np.abs(e - t) > thr).mean())),
        (">= instead of >", lambda e, t, thr=2.0: float((np.abs(e - t)[np.isfinite(t) & (t > 0)] >= thr).mean())),
        ("percentage", lambda e, t, thr=2.0: 100 * solution09.bad_pixel_rate(e, t, thr)),
        ("fixed threshold", lambda e, t, thr=2.0: solution09.bad_pixel_rate(e, t, 2.0)),
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
import time as _time

from torchmetrics.classification import MulticlassJaccardIndex
from torchvision import ops

from course_utils.models import conv_bn_relu


def _to_float_batch_loops(images):
    n, h, w, c = images.shape
    out = torch.empty(n, c, h, w)
    for channel in range(c):
        out[:, channel] = images[..., channel].float() / 255
    return out


def _accuracy_loop(logits, labels):
    rows = logits.tolist()
    return sum(max(range(len(r)), key=r.__getitem__) == y for r, y in zip(rows, labels.tolist())) / len(rows)


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


def _receptive_field_backwards(layers):
    field = 1
    for kernel, stride in reversed(layers):
        field = (field - 1) * stride + kernel
    return field


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


def _nms_list_style(boxes, scores, iou_threshold):
    order = sorted(range(len(scores)), key=lambda i: -float(scores[i]))  # Python's sort is stable
    keep = []
    for i in order:
        if all(float(solution03.box_iou(boxes[i:i + 1], boxes[j:j + 1])) <= iou_threshold for j in keep):
            keep.append(i)
    return torch.tensor(keep, dtype=torch.int64)


def _ap_numpy(scores, true_positive, n_ground_truth):
    order = np.argsort(-scores.numpy(), kind="stable")
    hits = np.cumsum(true_positive.numpy()[order])
    precision = hits / np.arange(1, len(hits) + 1)
    recall = hits / n_ground_truth
    envelope = np.maximum.accumulate(precision[::-1])[::-1]
    return float(np.sum(np.diff(np.concatenate([[0.0], recall])) * envelope))


def _dice_numpy(predicted, true):
    a, b = predicted.numpy(), true.numpy()
    total = a.sum() + b.sum()
    return np.float64(1.0) if total == 0 else np.float64(2 * np.logical_and(a, b).sum() / total)


def _iou_loop_with_zero_for_absent(predictions, targets, num_classes):
    out = torch.zeros(num_classes, dtype=torch.float64)
    for c in range(num_classes):
        p, t = predictions == c, targets == c
        union = (p | t).sum()
        out[c] = (p & t).sum() / union if union else 0.0
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


def _discriminator_loss_manual(real_logits, fake_logits):
    return -(F.logsigmoid(real_logits).mean() + F.logsigmoid(-fake_logits).mean())


def _discriminator_loss_numpy(real_logits, fake_logits):
    real, fake = real_logits.detach().numpy(), fake_logits.detach().numpy()
    value = np.mean(np.log1p(np.exp(-real))) + np.mean(np.log1p(np.exp(fake)))
    return torch.tensor(value, dtype=real_logits.dtype)


def _discriminator_loss_concatenated(real_logits, fake_logits):
    logits = torch.cat([real_logits, fake_logits])
    labels = torch.cat([torch.ones_like(real_logits), torch.zeros_like(fake_logits)])
    return 2 * F.binary_cross_entropy_with_logits(logits, labels)


def _penalty_rand_like(critic, real, fake):
    eps = torch.rand(len(real), device=real.device).view(-1, *[1] * (real.dim() - 1)).expand_as(real)
    x_hat = torch.lerp(fake, real, eps).detach().requires_grad_()
    grad = torch.autograd.grad(critic(x_hat), x_hat, grad_outputs=torch.ones(len(real)), create_graph=True)[0]
    return (grad.reshape(len(real), -1).norm(2, dim=1).sub(1).pow(2)).mean()


def _penalty_at(critic, points):
    points = points.detach().requires_grad_(True)
    gradients, = torch.autograd.grad(critic(points).sum(), points, create_graph=True)
    return ((gradients.flatten(1).norm(dim=1) - 1) ** 2).mean()


def _penalty_no_interpolation(critic, real, fake):
    return _penalty_at(critic, real)


def _penalty_one_ratio(critic, real, fake):
    mix = torch.rand(1)
    return _penalty_at(critic, mix * real + (1 - mix) * fake)


def _penalty_norm_over_dim1(critic, real, fake):
    mix = torch.rand(real.shape[0], *([1] * (real.ndim - 1)))
    points = (mix * real + (1 - mix) * fake).requires_grad_(True)
    gradients, = torch.autograd.grad(critic(points).sum(), points, create_graph=True)
    return ((gradients.norm(dim=1) - 1) ** 2).mean()


def _penalty_mix_per_value(critic, real, fake):
    mix = torch.rand_like(real)
    return _penalty_at(critic, mix * real + (1 - mix) * fake)


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


def _patchify_unfold(images, p):
    n, c, h, w = images.shape
    if h % p or w % p:
        raise ValueError("not divisible")
    return F.unfold(images, p, stride=p).reshape(n, c, p * p, -1).permute(0, 3, 2, 1).reshape(n, -1, p * p * c)


def _patchify_fixed_patch_four(images, p):
    return solution06.patchify(images, 4)


def _patchify_square_only(images, p):
    n, c, h, _ = images.shape
    if h % p:
        raise ValueError("not divisible")
    rows = h // p
    return images.reshape(n, c, rows, p, rows, p).permute(0, 2, 4, 3, 5, 1).reshape(n, rows * rows, -1)


def _patchify_assert(images, p):
    assert images.shape[-1] % p == 0 and images.shape[-2] % p == 0, "size not divisible"
    return rearrange(images, "b c (h p1) (w p2) -> b (h w) (p1 p2 c)", p1=p, p2=p)


def _pre_norm_named_steps(tokens, block):
    normed = block.norm1(tokens)
    attended = tokens + block.attn(normed)
    return attended + block.mlp(block.norm2(attended))


def _pre_norm_in_place(tokens, block):
    tokens += block.attn(block.norm1(tokens))
    return tokens + block.mlp(block.norm2(tokens))


def _pre_norm_mlp_on_input(tokens, block):
    middle = tokens + block.attn(block.norm1(tokens))
    return middle + block.mlp(block.norm2(tokens))


def _pre_norm_swapped_norms(tokens, block):
    tokens = tokens + block.attn(block.norm2(tokens))
    return tokens + block.mlp(block.norm1(tokens))


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


def _measure_numpy(fn, warmup=3, repeats=20):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = _time.perf_counter_ns()
        fn()
        times.append((_time.perf_counter_ns() - start) / 1e6)
    return float(np.median(times)), float(np.percentile(times, 90))


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


def _lucas_kanade_lstsq(ix, iy, it):
    a = np.stack([ix.ravel(), iy.ravel()], axis=1)
    (dx, dy), *_ = np.linalg.lstsq(a, -it.ravel(), rcond=None)
    return dx, dy  # NumPy floats


def _lucas_kanade_centre_pixel_rows(ix, iy, it):
    return solution09.lucas_kanade_step(ix[:3], iy[:3], it[:3])


def _lucas_kanade_in_place(ix, iy, it):
    it *= -1
    return solution09.lucas_kanade_step(ix, iy, -it)


def _bad_pixel_rate_masked(estimate, truth, threshold=2.0):
    errors = np.ma.masked_where(~(np.isfinite(truth) & (truth > 0)), np.abs(estimate - truth))
    return (errors > threshold).mean()  # a NumPy float


def _bad_pixel_rate_negatives_valid(estimate, truth, threshold=2.0):
    valid = np.isfinite(truth) & (truth != 0)
    return float((np.abs(estimate[valid] - truth[valid]) > threshold).mean())


def _bad_pixel_rate_signed_error(estimate, truth, threshold=2.0):
    valid = np.isfinite(truth) & (truth > 0)
    return float(((estimate[valid] - truth[valid]) > threshold).mean())


def _bad_pixel_rate_in_place(estimate, truth, threshold=2.0):
    truth[~np.isfinite(truth)] = 0
    valid = truth > 0
    return float((np.abs(estimate[valid] - truth[valid]) > threshold).mean())


STYLES = [
    (ch00.check_to_float_batch,
     [("channel loop", _to_float_batch_loops), ("einops", lambda x: rearrange(x, "n h w c -> n c h w").float().div(255))],
     [("divides by 256", lambda x: x.permute(0, 3, 1, 2).float() / 256),
      ("hard-coded 3 channels", lambda x: x.permute(0, 3, 1, 2).reshape(x.shape[0], 3, x.shape[1], x.shape[2]).float() / 255),
      ("in place on a float copy, then permute(0, 3, 2, 1)", lambda x: x.permute(0, 3, 2, 1).float().div(255).transpose(2, 3)
       if x.shape[1] == x.shape[2] else x.permute(0, 3, 2, 1).float() / 255),
      ("round to 2 decimals", lambda x: (x.permute(0, 3, 1, 2).float() / 255).round(decimals=2))]),
    (ch00.check_accuracy_from_logits,
     [("Python loop", _accuracy_loop), ("NumPy", lambda lg, y: np.mean(lg.numpy().argmax(1) == y.numpy()))],
     [("argmin", lambda lg, y: (lg.argmin(1) == y).float().mean().item()),
      ("divides by the class count", lambda lg, y: (lg.argmax(1) == y).float().sum().item() / lg.shape[1]),
      ("fixed 4 rows", lambda lg, y: (lg.argmax(1) == y).float().sum().item() / 4),
      ("integer division", lambda lg, y: float(int((lg.argmax(1) == y).sum()) // len(y)))]),
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
    (ch01.check_rgb_to_gray,
     [("cv2 itself", lambda im: cv2.cvtColor(im, cv2.COLOR_RGB2GRAY)),
      ("integer fixed point", lambda im: ((im.astype(np.int64) @ np.array([4899, 9617, 1868]) + 8192) >> 14).astype(np.uint8))],
     [("weights rounded to one decimal", lambda im: np.rint(im @ np.array([0.3, 0.6, 0.1])).astype(np.uint8)),
      ("in place", lambda im: (im.__setitem__(..., im // 2), solution01.rgb_to_gray(im * 2))[1]),
      ("green only", lambda im: im[..., 1].copy())]),
    (ch01.check_sobel_magnitude,
     [("hypot of two loops", lambda im: torch.hypot(_conv2d_loops(im, _SOBEL_X.to(im.dtype)), _conv2d_loops(im, _SOBEL_X.T.to(im.dtype))))],
     [("float32 only", lambda im: solution01.sobel_magnitude(im.float())
       if im.dtype == torch.float32 else solution01.sobel_magnitude(im.float()).half().double()),
      ("replicate padding", lambda im: torch.hypot(_replicate_padded(im, _SOBEL_X.to(im.dtype)), _replicate_padded(im, _SOBEL_X.T.to(im.dtype)))),
      ("divided by 8", lambda im: solution01.sobel_magnitude(im) / 8)]),
    (ch01.check_equalize_histogram,
     [("float64 LUT", _equalize_with_cv2_style_float64), ("cv2 itself", cv2.equalizeHist)],
     [("floor instead of round", lambda im: _lut_floor(im)),
      ("normalises by N, not N − cdf_min", lambda im: _lut_by_n(im)),
      ("constant image → zeros", lambda im: _lut_equalize(im) if len(np.unique(im)) > 1 else np.zeros_like(im))]),
    (ch02.check_conv_output_size,
     [("math.floor", lambda n, k, s=1, p=0, d=1: math.floor((n + 2 * p - d * (k - 1) - 1) / s) + 1),
      ("NumPy integer", lambda n, k, s=1, p=0, d=1: np.int64(solution02.conv_output_size(n, k, s, p, d)))],
     [("float result", lambda n, k, s=1, p=0, d=1: float(solution02.conv_output_size(n, k, s, p, d))),
      ("ceil", lambda n, k, s=1, p=0, d=1: -(-(n + 2 * p - d * (k - 1) - 1) // s) + 1),
      ("no defaults", lambda n, k, s, p, d: solution02.conv_output_size(n, k, s, p, d)),
      ("padding on one side", lambda n, k, s=1, p=0, d=1: (n + p - d * (k - 1) - 1) // s + 1)]),
    (ch02.check_conv_parameter_count,
     [("from nn.Conv2d", lambda ci, co, k, bias=True, groups=1: sum(
         p.numel() for p in nn.Conv2d(ci, co, k, bias=bias, groups=groups).parameters())),
      ("NumPy integer", lambda ci, co, k, bias=True, groups=1: np.int64(solution02.conv_parameter_count(ci, co, k, bias, groups)))],
     [("float count", lambda ci, co, k, bias=True, groups=1: float(solution02.conv_parameter_count(ci, co, k, bias, groups))),
      ("true division by groups", lambda ci, co, k, bias=True, groups=1: k * k * ci / groups * co + (co if bias else 0)),
      ("one bias per group", lambda ci, co, k, bias=True, groups=1: k * k * (ci // groups) * co + (groups if bias else 0)),
      ("bias=False by default", lambda ci, co, k, bias=False, groups=1: solution02.conv_parameter_count(ci, co, k, bias, groups))]),
    (ch02.check_receptive_field,
     [("backwards recursion", _receptive_field_backwards)],
     [("jump updated before the field", lambda layers: _receptive_field_jump_first(layers)),
      ("float result", lambda layers: float(solution02.receptive_field(layers))),
      ("empty list crashes", lambda layers: solution02.receptive_field(layers) if layers else max(layers)),
      ("last stride ignored only", lambda layers: 1 + sum((k - 1) * s for k, s in layers))]),
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
    (ch03.check_nms,
     [("list style", _nms_list_style), ("torchvision", ops.nms)],
     [("sorts the caller's scores in place", lambda b, s, t: (s.copy_(s.sort(descending=True).values), ops.nms(b, s, t))[1]),
      ("empty input crashes", lambda b, s, t: ops.nms(b, s, t) if len(b) else torch.stack([])),
      ("threshold ignored (0.5)", lambda b, s, t: ops.nms(b, s, 0.5))]),
    (ch03.check_average_precision,
     [("NumPy", _ap_numpy)],
     [("trapezoid-free 11-point AP", lambda s, tp, n: _ap_11_point(s, tp, n)),
      ("last precision only", lambda s, tp, n: _ap_last_precision(s, tp, n)),
      ("scores sorted in place", lambda s, tp, n: (s.copy_(s.flip(0)), solution03.average_precision(s, tp, n))[1])]),
    (ch04.check_dice_coefficient,
     [("NumPy float", _dice_numpy)],
     [("recall |A∩B| / |B|", lambda p, t: float((p & t).sum() / t.sum()) if t.any() else 1.0),
      ("missed object scored perfect", lambda p, t: 1.0 if not p.any() else solution04.dice_coefficient(p, t)),
      ("precision |A∩B| / |A|", lambda p, t: float((p & t).sum() / p.sum()) if p.any() else 1.0),
      ("empty prediction of nothing scored 0", lambda p, t: solution04.dice_coefficient(p, t) if (p | t).any() else 0.0)]),
    (ch04.check_per_class_iou,
     [("loop with 0 for absent classes", _iou_loop_with_zero_for_absent),
      ("torchmetrics", lambda p, t, n: MulticlassJaccardIndex(n, average="none")(p, t))],
     [("ignores num_classes", lambda p, t, n: solution04.per_class_iou(p, t, int(max(p.max(), t.max())) + 1)),
      ("integer division", lambda p, t, n: _iou_integer_division(p, t, n)),
      ("1 for absent classes", lambda p, t, n: solution04.per_class_iou(p, t, n).nan_to_num(1.0))]),
    (ch04.check_unet_block,
     [("class with named layers", _UNetBlockClass), ("course_utils.models.conv_bn_relu",
                                                     lambda c_in, c_out: nn.Sequential(conv_bn_relu(c_in, c_out), conv_bn_relu(c_out, c_out)))],
     [("no middle ReLU", _UNetBlockNoMiddleReLU), ("a BatchNorm built but never called", _UNetBlockUnusedNorm),
      ("one BatchNorm used twice", _UNetBlockSharedNorm), ("reflect padding", _unet_reflect_padding),
      ("ReLU before BatchNorm", _unet_relu_before_norm)]),
    (ch05.check_discriminator_loss,
     [("log-sigmoid by hand", _discriminator_loss_manual)],
     [("NumPy, no graph", _discriminator_loss_numpy),
      (".item() wrapped in a tensor", lambda r, f: torch.tensor(solution05.discriminator_loss(r, f).item())),
      ("one mean over both batches, doubled", _discriminator_loss_concatenated)]),
    (ch05.check_gradient_penalty,
     [("lerp, rand and grad_outputs", _penalty_rand_like)],
     [("no interpolation", _penalty_no_interpolation), ("one ratio for the batch", _penalty_one_ratio),
      ("norm over dim 1 only", _penalty_norm_over_dim1), ("a ratio per value, not per sample", _penalty_mix_per_value)]),
    (ch05.check_q_sample,
     [("gather, float64 result", _q_sample_gather)],
     [("4-D inputs only", _q_sample_4d_only), ("changes x0 in place", _q_sample_in_place),
      ("t − 1", _q_sample_t_minus_one)]),
    (ch06.check_attention,
     [("einsum in float64 with -1e9", _attention_einsum_float64)],
     [("scaled by √d of the values", _attention_scaled_by_value_dim), ("4-D inputs only", _attention_four_dims_only),
      ("scales q in place", _attention_in_place_scale)]),
    (ch06.check_patchify,
     [("F.unfold", _patchify_unfold), ("assert and einops", _patchify_assert)],
     [("fixed p = 4", _patchify_fixed_patch_four), ("square images only", _patchify_square_only),
      ("channels first", lambda x, p: rearrange(x, "b c (h p1) (w p2) -> b (h w) (c p1 p2)", p1=p, p2=p)
       if x.shape[2] % p == 0 and x.shape[3] % p == 0 else _patchify_unfold(x, p))]),
    (ch06.check_pre_norm_block,
     [("named steps", _pre_norm_named_steps)],
     [("adds in place to the caller's tokens", _pre_norm_in_place), ("MLP on the block input", _pre_norm_mlp_on_input),
      ("norm1 and norm2 swapped", _pre_norm_swapped_norms)]),
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
    (ch08.check_measure,
     [("NumPy percentile", _measure_numpy)],
     [("hard-coded 20 repeats", lambda fn, w=3, r=20: solution08.measure(fn, w, 20)),
      ("nanoseconds", lambda fn, w=3, r=20: tuple(v * 1e6 for v in solution08.measure(fn, w, r))),
      ("always 3 warm-up calls", lambda fn, w=3, r=20: solution08.measure(fn, 3, r)),
      ("numbers as strings", lambda fn, w=3, r=20: tuple(f"{v:.3f}" for v in solution08.measure(fn, w, r)))]),
    (ch08.check_quantize_uint8,
     [("NumPy scale and zero point", _quantize_numpy_zero_point)],
     [("int()-truncated zero point", _quantize_truncated_zero_point), ("float zero point", _quantize_float_zero_point),
      ("NaN scale for all zeros", _quantize_nan_for_zeros)]),
    (ch09.check_composite,
     [("Python loops, float64", _composite_loop), ("exclusive cumsum of optical depth", _composite_exclusive_cumsum)],
     [("changes densities in place", _composite_in_place), ("weights normalised to sum 1", _composite_normalised_weights),
      ("float16 precision", lambda d, c, de: tuple(v.half().to(d.dtype) for v in solution09.composite(d, c, de)))]),
    (ch09.check_lucas_kanade_step,
     [("lstsq with NumPy floats", _lucas_kanade_lstsq)],
     [("three rows of the window", _lucas_kanade_centre_pixel_rows), ("negates It in place", _lucas_kanade_in_place),
      ("returns a list", lambda ix, iy, it: list(solution09.lucas_kanade_step(ix, iy, it)))]),
    (ch09.check_bad_pixel_rate,
     [("masked array, NumPy float", _bad_pixel_rate_masked)],
     [("negative disparities valid", _bad_pixel_rate_negatives_valid), ("signed error", _bad_pixel_rate_signed_error),
      ("overwrites the caller's truth", _bad_pixel_rate_in_place)]),
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


def _receptive_field_jump_first(layers):
    field, jump = 1, 1
    for kernel, stride in layers:
        jump *= stride
        field += (kernel - 1) * jump
    return field


def _iou_union_sum(boxes_a, boxes_b):
    iou = solution03.box_iou(boxes_a, boxes_b)
    area_a = (boxes_a[:, 2:] - boxes_a[:, :2]).prod(-1)
    area_b = (boxes_b[:, 2:] - boxes_b[:, :2]).prod(-1)
    union = area_a[:, None] + area_b[None] - 0 * iou
    intersection = iou * (area_a[:, None] + area_b[None]) / (1 + iou)
    return intersection / union


def _ap_11_point(scores, true_positive, n_ground_truth):
    order = torch.sort(scores, descending=True, stable=True).indices
    hits = true_positive[order].double().cumsum(0)
    precision, recall = hits / torch.arange(1, len(hits) + 1), hits / n_ground_truth
    return float(sum((precision[recall >= r].max() if (recall >= r).any() else torch.tensor(0.0))
                     for r in torch.linspace(0, 1, 11)) / 11)


def _ap_last_precision(scores, true_positive, n_ground_truth):
    order = torch.sort(scores, descending=True, stable=True).indices
    hits = true_positive[order].double().cumsum(0)
    return float((hits[-1] / len(hits)) * (hits[-1] / n_ground_truth))


def _iou_integer_division(predictions, targets, num_classes):
    confusion = torch.bincount(targets.flatten() * num_classes + predictions.flatten(),
                               minlength=num_classes ** 2).reshape(num_classes, num_classes)
    union = confusion.sum(0) + confusion.sum(1) - confusion.diag()
    return (confusion.diag() // union.clamp(min=1)).float()


@pytest.mark.parametrize("checker, right_answers, wrong_answers", STYLES, ids=lambda v: getattr(v, "__name__", ""))
def test_right_answers_in_other_styles_pass_and_untried_wrong_answers_fail(checker, right_answers, wrong_answers):
    for description, right in right_answers:
        result = checker(right)
        assert result.status == "passed", f"{checker.__name__} rejected a right answer ({description}): {result.message}"
    assert len(wrong_answers) >= 3
    for description, wrong in wrong_answers:
        result = checker(wrong)
        assert result.status == "failed", f"{checker.__name__} accepted a wrong answer: {description}"


def test_every_checker_has_styles_and_wrong_answers():
    import importlib
    import inspect

    checkers = {f for chapter in (ch00, ch01, ch02, ch03, ch04, ch05, ch06, ch07, ch08, ch09)
                for name, f in inspect.getmembers(chapter, inspect.isfunction) if name.startswith("check_")}
    covered = {checker for checker, _, _ in STYLES}
    # the transfer exercises (issue 19, point 3) keep their cases in their own files
    for module_name in ("test_exercises_transfer_00_03", "test_exercises_transfer_04_06",
                        "test_exercises_transfer_07_09"):
        module = importlib.import_module(module_name)
        covered |= {checker for checker, _, _ in module.TRANSFER_CASES}
    assert checkers - covered == {ch08.check_export_dynamic}  # slow (ONNX export): its cases are in CH08 above


def test_misspelt_forward_is_a_failure_not_unsolved():
    result = ch04.check_unet_block(_UNetBlockTypo)
    assert result.status == "failed" and "forward" in result.message


def test_hints_only_when_the_value_proves_the_cause():
    message = ch00.check_to_float_batch(lambda x: x.permute(0, 3, 1, 2).float() / 256).message
    assert "256" in message and "reshape" not in message
    assert "reshape" in ch00.check_to_float_batch(CH00[0][2][0][1]).message
    assert "chunk" in ch02.check_accumulate_gradients(_accumulate_by_chunk_count).message
    assert "int() truncates" in ch08.check_quantize_uint8(_quantize_truncated_zero_point).message
    assert "recall" in ch04.check_dice_coefficient(STYLES[15][2][0][1]).message
