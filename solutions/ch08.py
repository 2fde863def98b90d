"""Reference solutions for chapter 08's exercises (ONNX export, uint8 and per-channel int8 quantisation)."""


import torch


def export_dynamic(model: torch.nn.Module, example: torch.Tensor, path: str) -> None:
    """Export ``model`` to ONNX at ``path`` with input "images", output "logits" and a dynamic batch axis."""
    model.eval()  # dropout off, BatchNorm on its running statistics
    batch = torch.export.Dim("batch", min=1, max=1024)
    torch.onnx.export(model, (example,), path, input_names=["images"], output_names=["logits"],
                      dynamic_shapes=({0: batch},), dynamo=True, verbose=False)


def quantize_uint8(x: torch.Tensor) -> tuple[torch.Tensor, float, int]:
    """Asymmetric uint8 quantisation: (q, scale, zero_point) with x ≈ scale · (q − zero_point), 0 exact."""
    low, high = min(float(x.min()), 0.0), max(float(x.max()), 0.0)  # the range must contain 0
    scale = (high - low) / 255 if high > low else 1.0
    zero_point = int(round(-low / scale))
    q = torch.clamp(torch.round(x / scale) + zero_point, 0, 255).to(torch.uint8)
    return q, scale, zero_point


def quantize_per_channel(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric int8 weights, one scale per output channel (dim 0): w ≈ scale_c · q, q in [−127, 127]."""
    # one outlier then coarsens only its own channel's grid, not every channel's (as one per-tensor scale would)
    largest = weight.abs().reshape(len(weight), -1).amax(dim=1)
    scales = torch.where(largest > 0, largest / 127, torch.ones_like(largest))  # an all-zero channel: 1.0, as ORT
    # |w / scale| ≤ 127 by construction, so rounding can never leave the int8 range: no clamp needed
    q = torch.round(weight / scales.view(-1, *[1] * (weight.dim() - 1))).to(torch.int8)
    return q, scales
