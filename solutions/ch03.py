"""Reference solutions for chapter 03's exercises (object detection)."""

import torch
import torch.nn.functional as F


def box_iou(boxes_a: torch.Tensor, boxes_b: torch.Tensor) -> torch.Tensor:
    """N×M IoU of xyxy boxes."""
    top_left = torch.maximum(boxes_a[:, None, :2], boxes_b[None, :, :2])
    bottom_right = torch.minimum(boxes_a[:, None, 2:], boxes_b[None, :, 2:])
    intersection = (bottom_right - top_left).clamp(min=0).prod(dim=-1)
    area_a = (boxes_a[:, 2:] - boxes_a[:, :2]).prod(dim=-1)
    area_b = (boxes_b[:, 2:] - boxes_b[:, :2]).prod(dim=-1)
    return intersection / (area_a[:, None] + area_b[None, :] - intersection)


def distance_box_iou(boxes_a: torch.Tensor, boxes_b: torch.Tensor) -> torch.Tensor:
    """N×M DIoU of xyxy boxes: IoU minus the squared centre distance over the enclosing box's squared diagonal."""
    centre_a = (boxes_a[:, :2] + boxes_a[:, 2:]) / 2
    centre_b = (boxes_b[:, :2] + boxes_b[:, 2:]) / 2
    centre_distance = ((centre_a[:, None, :] - centre_b[None, :, :]) ** 2).sum(dim=-1)
    # The smallest box enclosing both: its diagonal normalises the distance, so DIoU is scale-free.
    enclosing_top_left = torch.minimum(boxes_a[:, None, :2], boxes_b[None, :, :2])
    enclosing_bottom_right = torch.maximum(boxes_a[:, None, 2:], boxes_b[None, :, 2:])
    diagonal = ((enclosing_bottom_right - enclosing_top_left) ** 2).sum(dim=-1)
    return box_iou(boxes_a, boxes_b) - centre_distance / diagonal


def sigmoid_focal_loss(logits: torch.Tensor, targets: torch.Tensor, alpha: float = 0.25,
                       gamma: float = 2.0) -> torch.Tensor:
    """Element-wise focal loss of RetinaNet (no reduction), as ``torchvision.ops.sigmoid_focal_loss``."""
    # BCE from logits is stable for any logit size; log(sigmoid(x)) would give −inf for x ≪ 0.
    cross_entropy = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    p = torch.sigmoid(logits)
    p_true = p * targets + (1 - p) * (1 - targets)  # the probability given to the right answer
    alpha_true = alpha * targets + (1 - alpha) * (1 - targets)
    # (1 − p_true)^γ shrinks the loss of easy, confident examples: the flood of easy background.
    return alpha_true * (1 - p_true) ** gamma * cross_entropy
