"""MTCNN face detection (Zhang et al., 2016) in plain PyTorch: the three networks and their cascade.

Chapter 03 uses it as its real pretrained detector on real photos. The cascade is the classical
"cheap proposals, then stronger models on fewer crops" design:

1. an image pyramid, so a fixed 12×12 window covers faces of every size;
2. **P-Net**, fully convolutional, slides that 12×12 window (stride 2) over every pyramid level and
   proposes boxes; NMS per level and across levels removes duplicates;
3. **R-Net** re-scores 24×24 crops of the surviving proposals and refines their boxes;
4. **O-Net** does the same on 48×48 crops and adds five landmarks (eyes, nose, mouth corners); a
   final NMS with the "Min" overlap removes boxes nested in bigger ones.

The modules' parameter names equal those of facenet-pytorch's state-dict files (registered in
:mod:`course_utils.assets` as ``weights/mtcnn_pnet``, ``_rnet``, ``_onet``), so they load with
``strict=True``; :func:`load_mtcnn` fetches and loads all three. The cascade follows the pixel
conventions of facenet-pytorch's ``detect_face`` (a port of the authors' MATLAB code: 1-based pixel
indices, ``+ 1`` widths in some places and not in others, area interpolation for crops), so both
find the same faces; the comments say where each convention comes from.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torchvision import ops

MIN_FACE_SIZE = 20  # pixels: the smallest face searched for (the original default)
SCALE_FACTOR = 0.709  # ≈ 1/√2: each pyramid level has half the pixels of the previous one
THRESHOLDS = (0.6, 0.7, 0.7)  # face-probability thresholds of P-Net, R-Net and O-Net
PNET_WINDOW, PNET_STRIDE = 12, 2  # P-Net sees 12×12 windows; its one 2×2 max-pool makes the stride 2
NMS_PNET_LEVEL, NMS_PNET_ALL, NMS_RNET, NMS_ONET_MIN = 0.5, 0.7, 0.7, 0.7


def _dense_input(features: torch.Tensor) -> torch.Tensor:
    # The weights were converted from a framework that flattened feature maps as (W, H, C); reading
    # ours in that order makes the first dense layer see each value where it was trained to.
    return features.permute(0, 3, 2, 1).flatten(1)


class PNet(nn.Module):
    """Proposal network: a 12×12-input CNN with no dense layer, so it runs on whole images.

    On an N×3×H×W input it returns the face probability of every 12×12 window (stride 2),
    N×H'×W', and four box offsets per window, N×4×H'×W' (fractions of the window's size).
    """

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 10, kernel_size=3)
        self.prelu1 = nn.PReLU(10)
        self.pool1 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(10, 16, kernel_size=3)
        self.prelu2 = nn.PReLU(16)
        self.conv3 = nn.Conv2d(16, 32, kernel_size=3)
        self.prelu3 = nn.PReLU(32)
        self.conv4_1 = nn.Conv2d(32, 2, kernel_size=1)  # face / not face, per window
        self.conv4_2 = nn.Conv2d(32, 4, kernel_size=1)  # box offsets, per window

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.prelu3(self.conv3(self.prelu2(self.conv2(x))))
        return self.conv4_1(x).softmax(dim=1)[:, 1], self.conv4_2(x)


class RNet(nn.Module):
    """Refinement network on 24×24 crops: face probability (N,) and box offsets (N×4)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 28, kernel_size=3)
        self.prelu1 = nn.PReLU(28)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(28, 48, kernel_size=3)
        self.prelu2 = nn.PReLU(48)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3 = nn.Conv2d(48, 64, kernel_size=2)
        self.prelu3 = nn.PReLU(64)
        self.dense4 = nn.Linear(576, 128)  # 64 channels × 3 × 3
        self.prelu4 = nn.PReLU(128)
        self.dense5_1 = nn.Linear(128, 2)
        self.dense5_2 = nn.Linear(128, 4)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.prelu4(self.dense4(_dense_input(self.prelu3(self.conv3(x)))))
        return self.dense5_1(x).softmax(dim=1)[:, 1], self.dense5_2(x)


class ONet(nn.Module):
    """Output network on 48×48 crops: face probability (N,), box offsets (N×4) and five landmarks
    (N×10: the five x positions, then the five y positions, as fractions of the crop)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, kernel_size=3)
        self.prelu1 = nn.PReLU(32)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(32, 64, kernel_size=3)
        self.prelu2 = nn.PReLU(64)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3 = nn.Conv2d(64, 64, kernel_size=3)
        self.prelu3 = nn.PReLU(64)
        self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv4 = nn.Conv2d(64, 128, kernel_size=2)
        self.prelu4 = nn.PReLU(128)
        self.dense5 = nn.Linear(1152, 256)  # 128 channels × 3 × 3
        self.prelu5 = nn.PReLU(256)
        self.dense6_1 = nn.Linear(256, 2)
        self.dense6_2 = nn.Linear(256, 4)
        self.dense6_3 = nn.Linear(256, 10)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.pool3(self.prelu3(self.conv3(x)))
        x = self.prelu5(self.dense5(_dense_input(self.prelu4(self.conv4(x)))))
        return self.dense6_1(x).softmax(dim=1)[:, 1], self.dense6_2(x), self.dense6_3(x)


# --- the steps of the cascade ------------------------------------------------------------------------

def pyramid_scales(height: int, width: int, min_face_size: float = MIN_FACE_SIZE,
                   factor: float = SCALE_FACTOR) -> list[float]:
    """The image scales P-Net runs at: the first maps a ``min_face_size`` face onto P-Net's 12-px
    window; each next one shrinks by ``factor`` while the short side still holds one window."""
    if height <= 0 or width <= 0 or min_face_size <= 0 or not 0 < factor < 1:
        raise ValueError(f"need a positive image size, min_face_size > 0 and 0 < factor < 1; got "
                         f"{height}×{width}, min_face_size={min_face_size}, factor={factor}")
    scale = PNET_WINDOW / min_face_size
    short_side = min(height, width) * scale
    scales = []
    while short_side >= PNET_WINDOW:
        scales.append(scale)
        scale *= factor
        short_side *= factor
    return scales


def normalise(pixels: torch.Tensor) -> torch.Tensor:
    """0-255 pixel values → about [-1, 1], the input range the networks were trained on."""
    return (pixels - 127.5) * 0.0078125  # 1/128, exactly as the original


def pnet_windows(probability: torch.Tensor, offsets: torch.Tensor, scale: float, threshold: float):
    """P-Net's output on one pyramid level → (boxes in image pixels K×4, scores K, offsets K×4).

    Output cell (row, column) saw the 12×12 window starting at (2·row, 2·column) of the scaled
    image; dividing by ``scale`` maps it back. The ``+ 1`` and the flooring reproduce the original
    code, which used 1-based pixel indices.
    """
    rows, columns = torch.nonzero(probability >= threshold, as_tuple=True)
    top_left = torch.stack([columns, rows], dim=1).to(offsets.dtype) * PNET_STRIDE
    boxes = torch.cat([((top_left + 1) / scale).floor(), ((top_left + PNET_WINDOW) / scale).floor()], dim=1)
    return boxes, probability[rows, columns], offsets[:, rows, columns].T


def apply_offsets(boxes: torch.Tensor, offsets: torch.Tensor, inclusive: bool = True) -> torch.Tensor:
    """Move each box edge by its offset times the box's width or height.

    ``inclusive`` counts widths as ``x2 − x1 + 1`` pixels (R-Net and O-Net in the original code);
    P-Net's proposals use ``x2 − x1``. We keep both so the boxes equal the reference's.
    """
    size = boxes[:, 2:] - boxes[:, :2] + (1 if inclusive else 0)
    return boxes + offsets * size.repeat(1, 2)


def square(boxes: torch.Tensor) -> torch.Tensor:
    """Grow each box to a square of its longer side around the same centre: R-Net and O-Net take
    square crops, so a square box keeps the face's proportions when it is resized."""
    size = boxes[:, 2:] - boxes[:, :2]
    side = size.max(dim=1, keepdim=True).values
    top_left = boxes[:, :2] + size / 2 - side / 2
    return torch.cat([top_left, top_left + side], dim=1)


def crop_windows(boxes: torch.Tensor, width: int, height: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Integer pixel ranges (x0, y0, x1, y1), end-exclusive, that the reference crops for each box,
    and a mask of the boxes with a non-empty crop.

    The original truncates the box to 1-based pixel indices and clips it to the image, so a box that
    sticks out is cut, not padded, and its crop is squeezed to a square when resized.
    """
    corners = boxes.trunc().long()
    x0, y0 = corners[:, 0].clamp(min=1) - 1, corners[:, 1].clamp(min=1) - 1
    x1, y1 = corners[:, 2].clamp(max=width), corners[:, 3].clamp(max=height)
    windows = torch.stack([x0, y0, x1, y1], dim=1)
    return windows, (x1 > x0) & (y1 > y0)


def resize_crops(image: torch.Tensor, windows: torch.Tensor, size: int) -> torch.Tensor:
    """Area-resize every crop of a C×H×W image to size×size at once: N×C×size×size.

    Area interpolation (``F.interpolate(mode="area")``, what the reference uses per crop) averages
    output cell i over input pixels floor(i·n/size) … ceil((i+1)·n/size). Each such average is a
    rectangle sum, which an integral image (summed-area table, the trick behind Viola-Jones' Haar
    features) gives with four look-ups, so all crops are resized in one batched gather. float64 keeps
    the sums of a large photo exact.
    """
    device = image.device
    if device.type == "mps":  # Apple GPUs have no float64: sum on the CPU
        image, windows = image.cpu(), windows.cpu()
    integral = F.pad(image.double().cumsum(1).cumsum(2), (1, 0, 1, 0))  # C×(H+1)×(W+1), zero first row/col
    cell = torch.arange(size, device=image.device)

    def edges(start, length):  # N×size start and end (exclusive) pixel of each output cell
        begin = start[:, None] + (cell * length[:, None]) // size
        end = start[:, None] - ((-(cell + 1) * length[:, None]) // size)  # ceil division
        return begin, end

    top, bottom = edges(windows[:, 1], windows[:, 3] - windows[:, 1])
    left, right = edges(windows[:, 0], windows[:, 2] - windows[:, 0])
    rows_b, rows_e, cols_b, cols_e = top[:, :, None], bottom[:, :, None], left[:, None, :], right[:, None, :]
    sums = (integral[:, rows_e, cols_e] - integral[:, rows_b, cols_e]
            - integral[:, rows_e, cols_b] + integral[:, rows_b, cols_b])  # C×N×size×size
    counts = (rows_e - rows_b) * (cols_e - cols_b)
    return (sums / counts).to(device, image.dtype).permute(1, 0, 2, 3)


def min_overlap(boxes_a: torch.Tensor, boxes_b: torch.Tensor) -> torch.Tensor:
    """N×M intersection / area of the smaller box, with the original's inclusive (+1) pixel areas."""
    top_left = torch.maximum(boxes_a[:, None, :2], boxes_b[None, :, :2])
    bottom_right = torch.minimum(boxes_a[:, None, 2:], boxes_b[None, :, 2:])
    intersection = (bottom_right - top_left + 1).clamp(min=0).prod(dim=-1)
    area_a, area_b = [(b[:, 2:] - b[:, :2] + 1).prod(dim=-1) for b in (boxes_a, boxes_b)]
    return intersection / torch.minimum(area_a[:, None], area_b[None, :])


def nms_min(boxes: torch.Tensor, scores: torch.Tensor, threshold: float) -> torch.Tensor:
    """Greedy NMS (chapter 03, section 3) with the "Min" overlap: a box goes when more than
    ``threshold`` of the smaller box lies inside a better one. IoU would keep a small box nested in a
    big one (say, a box on one eye inside a face), because their IoU is small; "Min" removes it."""
    order = torch.sort(scores, descending=True, stable=True).indices
    overlap = min_overlap(boxes, boxes)
    suppressed = torch.zeros(len(boxes), dtype=torch.bool, device=boxes.device)
    keep = []
    for i in order.tolist():
        if not suppressed[i]:
            keep.append(i)
            suppressed |= overlap[i] > threshold
    return torch.tensor(keep, dtype=torch.long, device=boxes.device)


# --- the cascade -------------------------------------------------------------------------------------

def as_image_tensor(image) -> torch.Tensor:
    """An RGB photo (H×W×3 uint8 NumPy array, PIL image or tensor) → 3×H×W float32 tensor, 0-255."""
    if not isinstance(image, torch.Tensor):
        image = torch.from_numpy(np.array(image, dtype=np.uint8, copy=True))
    if image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"expected one RGB image shaped H×W×3 (values 0-255), got shape {tuple(image.shape)}")
    return image.permute(2, 0, 1).float()


@dataclass
class Faces:
    """What :meth:`MTCNN.detect` found in one image.

    ``boxes`` N×4 (xyxy pixels), ``scores`` (N,) O-Net's face probability, ``landmarks`` N×5×2 (x, y
    of the two eyes, the nose and the two mouth corners). ``stages`` maps each step of the
    cascade to its (boxes, scores): ``pnet_windows`` (every window over the threshold, all levels),
    ``pnet_nms`` (after NMS per level and across levels), ``pnet`` (refined and squared: R-Net's
    input), ``rnet`` (O-Net's input) and ``onet`` (the result). With ``keep_maps=True``, ``maps``
    holds P-Net's probability map of every pyramid level and ``scales`` the levels' scales.
    """

    boxes: torch.Tensor
    scores: torch.Tensor
    landmarks: torch.Tensor
    stages: dict = field(default_factory=dict)
    scales: list = field(default_factory=list)
    maps: list = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.boxes)


class MTCNN(nn.Module):
    """The three networks and the cascade that runs them (see the module docstring)."""

    def __init__(self, min_face_size: float = MIN_FACE_SIZE, thresholds=THRESHOLDS, factor: float = SCALE_FACTOR):
        super().__init__()
        if len(thresholds) != 3:
            raise ValueError(f"thresholds must be three probabilities (P-, R-, O-Net), got {thresholds!r}")
        self.pnet, self.rnet, self.onet = PNet(), RNet(), ONet()
        self.min_face_size, self.thresholds, self.factor = min_face_size, tuple(thresholds), factor
        self.eval()

    @property
    def device(self) -> torch.device:
        return self.pnet.conv1.weight.device

    @torch.no_grad()
    def propose(self, image: torch.Tensor, keep_maps: bool = False) -> dict:
        """Stage 1: P-Net over the pyramid → squared candidate boxes, plus what each step kept."""
        height, width = image.shape[-2:]
        scales = pyramid_scales(height, width, self.min_face_size, self.factor)
        none = (image.new_zeros(0, 4), image.new_zeros(0), image.new_zeros(0, 4))
        windows, kept, maps = [none[:2]], [none], []  # stays valid when no level fits (a tiny image)
        for scale in scales:
            # The reference sizes each level int(side·scale + 1) and resizes by area averaging.
            level = F.interpolate(image[None], size=(int(height * scale + 1), int(width * scale + 1)), mode="area")
            probability, offsets = self.pnet(normalise(level))
            boxes, scores, box_offsets = pnet_windows(probability[0], offsets[0], scale, self.thresholds[0])
            keep = ops.nms(boxes, scores, NMS_PNET_LEVEL)  # duplicates of one face at one scale
            windows.append((boxes, scores))
            kept.append((boxes[keep], scores[keep], box_offsets[keep]))
            if keep_maps:
                maps.append(probability[0].cpu())
        boxes, scores, offsets = (torch.cat(parts) for parts in zip(*kept))
        keep = ops.nms(boxes, scores, NMS_PNET_ALL)  # the same face found at neighbouring scales
        boxes, scores, offsets = boxes[keep], scores[keep], offsets[keep]
        stages = {"pnet_windows": tuple(torch.cat(parts) for parts in zip(*windows)),
                  "pnet_nms": (boxes, scores),
                  "pnet": (square(apply_offsets(boxes, offsets, inclusive=False)), scores)}
        return {"stages": stages, "scales": scales, "maps": maps}

    def _crops(self, image: torch.Tensor, boxes: torch.Tensor, size: int):
        windows, valid = crop_windows(boxes, image.shape[-1], image.shape[-2])
        return normalise(resize_crops(image, windows[valid], size)), valid

    @torch.no_grad()
    def refine(self, image: torch.Tensor, boxes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Stage 2: R-Net on 24×24 crops of the candidates → fewer, refined, squared boxes, scores."""
        crops, valid = self._crops(image, boxes, 24)
        probability, offsets = self.rnet(crops)
        passed = probability > self.thresholds[1]
        boxes, scores, offsets = boxes[valid][passed], probability[passed], offsets[passed]
        keep = ops.nms(boxes, scores, NMS_RNET)
        return square(apply_offsets(boxes[keep], offsets[keep])), scores[keep]

    @torch.no_grad()
    def output(self, image: torch.Tensor, boxes: torch.Tensor):
        """Stage 3: O-Net on 48×48 crops → final boxes, scores and landmarks (N×5×2 pixels)."""
        crops, valid = self._crops(image, boxes, 48)
        probability, offsets, points = self.onet(crops)
        passed = probability > self.thresholds[2]
        boxes, scores, offsets, points = boxes[valid][passed], probability[passed], offsets[passed], points[passed]
        # Landmarks are fractions of the crop O-Net saw (inclusive width, 1-based origin in the original).
        size = boxes[:, 2:] - boxes[:, :2] + 1
        landmarks = torch.stack([points[:, :5] * size[:, :1] + boxes[:, :1] - 1,
                                 points[:, 5:] * size[:, 1:] + boxes[:, 1:2] - 1], dim=-1)
        boxes = apply_offsets(boxes, offsets)
        keep = nms_min(boxes, scores, NMS_ONET_MIN)
        return boxes[keep], scores[keep], landmarks[keep]

    @torch.no_grad()
    def detect(self, image, keep_maps: bool = False) -> Faces:
        """Every face in one RGB photo (H×W×3, 0-255: NumPy, PIL or tensor), as :class:`Faces`."""
        pixels = as_image_tensor(image).to(self.device)
        first = self.propose(pixels, keep_maps=keep_maps)
        stages = first["stages"]
        boxes = stages["pnet"][0]
        empty = boxes.new_zeros(0)
        stages["rnet"] = self.refine(pixels, boxes) if len(boxes) else (boxes, empty)
        boxes = stages["rnet"][0]
        final = self.output(pixels, boxes) if len(boxes) else (boxes, empty, boxes.new_zeros(0, 5, 2))
        stages["onet"] = final[:2]
        return Faces(*final, stages=stages, scales=first["scales"], maps=first["maps"])


def load_mtcnn(device=None, **settings) -> MTCNN:
    """An :class:`MTCNN` with the pretrained weights, fetched through the course's asset registry
    (raises :class:`course_utils.assets.AssetUnavailableError` when they cannot be had)."""
    from . import assets

    detector = MTCNN(**settings)
    for name in ("pnet", "rnet", "onet"):
        state = torch.load(assets.fetch(f"weights/mtcnn_{name}"), map_location="cpu", weights_only=True)
        getattr(detector, name).load_state_dict(state, strict=True)
    return detector.to(device or "cpu").eval()
