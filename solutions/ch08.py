"""Reference solutions for chapter 08's exercises (ONNX export with a dynamic batch, a latency helper, int8)."""

import statistics
import time

import torch


def export_dynamic(model: torch.nn.Module, example: torch.Tensor, path: str) -> None:
    """Export ``model`` to ONNX at ``path`` with input "images", output "logits" and a dynamic batch axis."""
    model.eval()  # dropout off, BatchNorm on its running statistics
    batch = torch.export.Dim("batch", min=1, max=1024)
    torch.onnx.export(model, (example,), path, input_names=["images"], output_names=["logits"],
                      dynamic_shapes=({0: batch},), dynamo=True, verbose=False)


def timed_calls(fn, warmup: int = 3, repeats: int = 20) -> list[float]:
    """The sorted durations in milliseconds of ``repeats`` calls of ``fn()``, after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return sorted(times)


def measure(fn, warmup: int = 3, repeats: int = 20) -> tuple[float, float]:
    """(median, p90) latency of ``fn()`` in milliseconds, after ``warmup`` untimed calls."""
    times = timed_calls(fn, warmup, repeats)
    return statistics.median(times), times[round(0.9 * (len(times) - 1))]


def quantize_uint8(x: torch.Tensor) -> tuple[torch.Tensor, float, int]:
    """Asymmetric uint8 quantisation: (q, scale, zero_point) with x ≈ scale · (q − zero_point), 0 exact."""
    low, high = min(float(x.min()), 0.0), max(float(x.max()), 0.0)  # the range must contain 0
    scale = (high - low) / 255 if high > low else 1.0
    zero_point = int(round(-low / scale))
    q = torch.clamp(torch.round(x / scale) + zero_point, 0, 255).to(torch.uint8)
    return q, scale, zero_point
