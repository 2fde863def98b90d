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

