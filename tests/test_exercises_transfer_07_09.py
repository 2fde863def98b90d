"""Transfer exercises of chapters 07–09 (issue 19, point 3): ideas the notebooks did not show.

Each entry of ``TRANSFER_CASES``: the checker, its reference solution, right answers written in other styles
(loops vs vectorised, NumPy vs torch, float64), and at least three plausible wrong answers it must reject.
tests/test_exercises.py judges them all; this file holds the cases and its own extra tests.
"""

import math

import numpy as np
import torch

from course_utils.exercises import ch07, ch08, ch09
from solutions import ch07 as solution07
from solutions import ch08 as solution08
from solutions import ch09 as solution09

# --- chapter 07: mean average precision -------------------------------------------------------------------


def _map_sklearn(similarity, relevant):
    from sklearn.metrics import average_precision_score

    return np.mean([average_precision_score(r.numpy(), s.double().numpy()) for s, r in zip(similarity, relevant)])


def _map_loops(similarity, relevant):
    average_precisions = []
    for scores, targets in zip(similarity.tolist(), relevant.tolist()):
        ranked = [t for _, t in sorted(zip(scores, targets), key=lambda pair: -pair[0])]
        found, total = 0, 0.0
        for rank, is_relevant in enumerate(ranked, start=1):
            if is_relevant:
                found += 1
                total += found / rank
        average_precisions.append(total / found)
    return sum(average_precisions) / len(average_precisions)


def _map_parts(similarity, relevant, divide_by_items=False, all_ranks=False, median=False):
    hits = relevant.gather(1, similarity.argsort(dim=1, descending=True)).double()
    precision = hits.cumsum(1) / torch.arange(1, hits.shape[1] + 1)
    if all_ranks:
        per_query = precision.mean(1)
    else:
        per_query = (precision * hits).sum(1) / (hits.shape[1] if divide_by_items else hits.sum(1))
    return (per_query.median() if median else per_query.mean()).item()


def _map_r_precision(similarity, relevant):
    hits = relevant.gather(1, similarity.argsort(dim=1, descending=True)).double()
    counts = hits.sum(1).long()
    return float(np.mean([row[:count].mean().item() for row, count in zip(hits, counts)]))


def _map_sorts_in_place(similarity, relevant):
    order = similarity.argsort(dim=1, descending=True)
    similarity.copy_(similarity.gather(1, order))  # sorted scores written back into the caller's table
    return solution07.mean_average_precision(similarity, relevant.gather(1, order))


# --- chapter 08: per-channel int8 quantisation --------------------------------------------------------------


def _per_channel_loops(weight):
    rows = weight.detach().double().reshape(len(weight), -1).tolist()
    scales = np.array([max(abs(v) for v in row) / 127 or 1.0 for row in rows])  # NumPy float64 scales
    q = [[round(v / scale) for v in row] for row, scale in zip(rows, scales)]
    return torch.tensor(q, dtype=torch.int8).reshape(weight.shape), scales


def _per_channel_amax_clamped(weight):
    w = weight.detach().double()
    largest = w.abs().amax(dim=tuple(range(1, w.dim()))) if w.dim() > 1 else w.abs()
    scales = largest.clamp(min=0) / 127
    scales[largest == 0] = 1.0
    shape = (-1,) + (1,) * (w.dim() - 1)
    return (w / scales.reshape(shape)).round().clamp(-127, 127).to(torch.int8), scales


def _per_tensor_scale(weight):
    scale = weight.detach().abs().max() / 127
    return torch.round(weight / scale).to(torch.int8), scale.expand(len(weight)).clone()


def _per_channel_divided_by_128(weight):
    _, scales = solution08.quantize_per_channel(weight)
    scales = scales * 127 / 128
    return torch.round(weight / scales.view(-1, *[1] * (weight.dim() - 1))).clamp(-128, 127).to(torch.int8), scales


def _per_channel_truncated(weight):
    _, scales = solution08.quantize_per_channel(weight)
    return (weight / scales.view(-1, *[1] * (weight.dim() - 1))).to(torch.int8), scales


def _per_channel_asymmetric_range(weight):
    rows = weight.detach().reshape(len(weight), -1)
    scales = (rows.amax(1) - rows.amin(1)) / 255
    scales = torch.where(scales > 0, scales, torch.ones_like(scales))
    return torch.round(weight / scales.view(-1, *[1] * (weight.dim() - 1))).clamp(-128, 127).to(torch.int8), scales


def _per_channel_zero_scale_for_zero_channels(weight):
    largest = weight.detach().abs().reshape(len(weight), -1).amax(1)
    scales = largest / 127
    q = torch.round(weight / scales.view(-1, *[1] * (weight.dim() - 1))).nan_to_num(0)
    return q.to(torch.int8), scales


def _per_channel_in_place(weight):
    q, scales = solution08.quantize_per_channel(weight)
    with torch.no_grad():
        weight.copy_(scales.view(-1, *[1] * (weight.dim() - 1)) * q)  # "fake-quantise" the layer in place
    return q, scales


# --- chapter 08: BatchNorm folding -------------------------------------------------------------------------


def _chamfer_loops(a, b):
    a_to_b = torch.stack([((point - b) ** 2).sum(1).min() for point in a]).mean()
    b_to_a = torch.stack([((point - a) ** 2).sum(1).min() for point in b]).mean()
    return a_to_b + b_to_a


def _chamfer_cdist_float64(a, b):
    squared = torch.cdist(a.double(), b.double()).square()
    return (squared.amin(1).mean() + squared.amin(0).mean()).to(a.dtype)


def _chamfer_concatenated_mean(a, b):
    squared = ((a[:, None] - b[None]) ** 2).sum(-1)
    return torch.cat([squared.min(1).values, squared.min(0).values]).mean()


def _chamfer_a_to_b_twice(a, b):
    squared = ((a[:, None] - b[None]) ** 2).sum(-1)
    return 2 * squared.min(1).values.mean()


def _chamfer_via_numpy(a, b):
    squared = ((a.detach().numpy()[:, None] - b.detach().numpy()[None]) ** 2).sum(-1)
    return torch.tensor(squared.min(1).mean() + squared.min(0).mean())


def _chamfer_centred_in_place(a, b):
    a -= a.mean(0)  # centring the clouds first: changes the caller's points (and the answer)
    return solution09.chamfer_distance(a, b)


def _chamfer_hausdorff(a, b):
    squared = ((a[:, None] - b[None]) ** 2).sum(-1)
    return squared.min(1).values.max() + squared.min(0).values.max()


def _farthest_numpy_squared(points, k, start=0):
    cloud = points.double().numpy()
    chosen = np.empty(k, dtype=np.int64)
    chosen[0] = start
    nearest = ((cloud - cloud[start]) ** 2).sum(1)
    for i in range(1, k):
        chosen[i] = np.argmax(nearest)
        nearest = np.minimum(nearest, ((cloud - cloud[chosen[i]]) ** 2).sum(1))
    return chosen


def _farthest_python_list(points, k, start=0):
    rows = points.tolist()
    chosen = [start]
    while len(chosen) < k:
        chosen.append(max(range(len(rows)), key=lambda i: min(math.dist(rows[i], rows[c]) for c in chosen)))
    return chosen


def _farthest_cdist_int32(points, k, start=0):
    distances = torch.cdist(points.double(), points.double())
    chosen = [start]
    for _ in range(k - 1):
        chosen.append(int(distances[:, chosen].min(dim=1).values.argmax()))
    return torch.tensor(chosen, dtype=torch.int32)


def _farthest_from_last_only(points, k, start=0):
    chosen = [start]
    for _ in range(k - 1):
        chosen.append(int((points - points[chosen[-1]]).norm(dim=1).argmax()))
    return torch.tensor(chosen)


def _farthest_by_summed_distance(points, k, start=0):
    chosen, total = [start], torch.zeros(len(points), dtype=points.dtype)
    for _ in range(k - 1):
        total = total + (points - points[chosen[-1]]).norm(dim=1)
        total[chosen] = -1  # at least never the same point twice
        chosen.append(int(total.argmax()))
    return torch.tensor(chosen)


def _farthest_ignoring_start(points, k, start=0):
    return solution09.farthest_point_sampling(points, k, 0)


def _farthest_without_start(points, k, start=0):
    return solution09.farthest_point_sampling(points, k + 1, start)[1:]


def _farthest_coordinates(points, k, start=0):
    return points[solution09.farthest_point_sampling(points, k, start)]


TRANSFER_CASES = [
    (ch07.check_mean_average_precision,
     [("reference", solution07.mean_average_precision), ("scikit-learn per query, NumPy float", _map_sklearn),
      ("Python loops over sorted lists", _map_loops)],
     [("ascending order", lambda s, r: solution07.mean_average_precision(-s, r)),
      ("divided by the number of items", lambda s, r: _map_parts(s, r, divide_by_items=True)),
      ("precision averaged over every rank", lambda s, r: _map_parts(s, r, all_ranks=True)),
      ("median over queries", lambda s, r: _map_parts(s, r, median=True)), ("R-precision", _map_r_precision),
      ("returns a tensor", lambda s, r: torch.tensor(solution07.mean_average_precision(s, r))),
      ("sorts the caller's table in place", _map_sorts_in_place)]),
    (ch08.check_quantize_per_channel,
     [("reference", solution08.quantize_per_channel), ("Python loops, NumPy float64 scales", _per_channel_loops),
      ("amax over the other dims, float64, clamped", _per_channel_amax_clamped)],
     [("one scale for the whole tensor", _per_tensor_scale), ("divides by 128", _per_channel_divided_by_128),
      ("truncates instead of rounding", _per_channel_truncated), ("asymmetric (max − min) / 255", _per_channel_asymmetric_range),
      ("scale 0 for an all-zero channel", _per_channel_zero_scale_for_zero_channels),
      ("fake-quantises the weight in place", _per_channel_in_place),
      ("uint8 with an offset of 128", lambda w: ((solution08.quantize_per_channel(w)[0].int() + 128).to(torch.uint8),
                                                  solution08.quantize_per_channel(w)[1])),
      ("scales over dim 1", lambda w: (solution08.quantize_per_channel(w)[0],
                                       solution08.quantize_per_channel(w.transpose(0, 1))[1]))]),
    (ch09.check_chamfer_distance,
     [("reference", solution09.chamfer_distance), ("loops over the points", _chamfer_loops),
      ("torch.cdist in float64", _chamfer_cdist_float64)],
     [("plain distances", lambda a, b: torch.cdist(a, b).min(1).values.mean() + torch.cdist(a, b).min(0).values.mean()),
      ("sums instead of means", lambda a, b: ((a[:, None] - b[None]) ** 2).sum(-1).min(1).values.sum()
       + ((a[:, None] - b[None]) ** 2).sum(-1).min(0).values.sum()),
      ("one mean over both directions", _chamfer_concatenated_mean), ("a → b twice", _chamfer_a_to_b_twice),
      ("through NumPy (no graph)", _chamfer_via_numpy), ("centres a in place", _chamfer_centred_in_place),
      ("largest instead of mean (Hausdorff)", _chamfer_hausdorff)]),
    (ch09.check_farthest_point_sampling,
     [("reference", solution09.farthest_point_sampling), ("NumPy, squared distances", _farthest_numpy_squared),
      ("Python lists and math.dist", _farthest_python_list), ("cdist matrix, int32 indices", _farthest_cdist_int32)],
     [("distance to the last chosen point only", _farthest_from_last_only),
      ("summed distances", _farthest_by_summed_distance), ("ignores start", _farthest_ignoring_start),
      ("leaves out the start point", _farthest_without_start), ("returns the points", _farthest_coordinates),
      ("one point too many", lambda p, k, start=0: solution09.farthest_point_sampling(p, min(k + 1, len(p)), start)
       if k < len(p) else solution09.farthest_point_sampling(p, k, start)[:-1])]),
]
