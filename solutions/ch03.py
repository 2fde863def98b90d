"""Reference solutions for chapter 03's exercises (object detection)."""

import torch


def box_iou(boxes_a: torch.Tensor, boxes_b: torch.Tensor) -> torch.Tensor:
    """N×M IoU of xyxy boxes."""
    top_left = torch.maximum(boxes_a[:, None, :2], boxes_b[None, :, :2])
    bottom_right = torch.minimum(boxes_a[:, None, 2:], boxes_b[None, :, 2:])
    intersection = (bottom_right - top_left).clamp(min=0).prod(dim=-1)
    area_a = (boxes_a[:, 2:] - boxes_a[:, :2]).prod(dim=-1)
    area_b = (boxes_b[:, 2:] - boxes_b[:, :2]).prod(dim=-1)
    return intersection / (area_a[:, None] + area_b[None, :] - intersection)


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Greedy NMS: kept indices by decreasing score; ties keep the lower index first."""
    order = torch.sort(scores, descending=True, stable=True).indices
    iou = box_iou(boxes, boxes)
    removed = torch.zeros(len(boxes), dtype=torch.bool)
    keep = []
    for i in order.tolist():
        if not removed[i]:
            keep.append(i)
            removed |= iou[i] > iou_threshold
    return torch.tensor(keep, dtype=torch.int64)


def average_precision(scores: torch.Tensor, true_positive: torch.Tensor, n_ground_truth: int) -> float:
    """All-point interpolated AP: area under the precision envelope over recall."""
    order = torch.sort(scores, descending=True, stable=True).indices
    hits = true_positive[order].double().cumsum(0)
    precision = hits / torch.arange(1, len(hits) + 1)
    recall = hits / n_ground_truth
    envelope = torch.flip(torch.cummax(torch.flip(precision, [0]), 0).values, [0])
    recall_steps = torch.diff(recall, prepend=torch.zeros(1, dtype=recall.dtype))
    return float((recall_steps * envelope).sum())
