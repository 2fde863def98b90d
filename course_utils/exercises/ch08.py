"""Checkers for chapter 08's exercises (ONNX export with a dynamic batch, uint8 and per-channel int8 quantisation)."""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..checks import CheckFailed, call, expect_type, is_int, is_real, run_checks


def check_export_dynamic(fn):
    """``fn(model, example, path)`` writes an ONNX file (input "images", output "logits", dynamic batch)."""
    def exported_file(fn):
        import onnx
        import onnxruntime as ort

        torch.manual_seed(0)
        model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Dropout(0.5),
                              nn.Linear(4 * 6 * 6, 3))
        with torch.no_grad():  # non-trivial BatchNorm statistics, so train-mode BatchNorm gives other numbers
            model[1].running_mean.uniform_(-1, 1)
            model[1].running_var.uniform_(0.5, 2)
        model.train()  # as a model comes out of a training loop
        path = Path(tempfile.mkdtemp(prefix="check-export-")) / "model.onnx"
        fn(model, torch.randn(1, 1, 8, 8), str(path))
        if not path.is_file():
            raise CheckFailed(f"no file was written at the path given ({path})")
        onnx.checker.check_model(onnx.load(str(path)))
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        names = ([i.name for i in session.get_inputs()], [o.name for o in session.get_outputs()])
        if names != (["images"], ["logits"]):
            raise CheckFailed(f"name the input 'images' and the output 'logits'; got {names}")
        model.eval()
        for batch_size in (1, 5):
            images = torch.randn(batch_size, 1, 8, 8)
            try:
                got = session.run(None, {"images": images.numpy()})[0]
            except Exception as error:  # noqa: BLE001 - onnxruntime raises its own types
                raise CheckFailed(f"ONNX Runtime refused batch {batch_size}: {str(error)[:120]}… "
                                  "is the batch dimension dynamic?") from None
            with torch.no_grad():
                expected = model(images).numpy()
            if got.shape != expected.shape or not np.allclose(got, expected, atol=1e-4):
                raise CheckFailed(f"batch {batch_size}: the ONNX outputs differ from the model in eval mode "
                                  "(call model.eval() before exporting: dropout and BatchNorm behave differently)")

    return run_checks("ONNX export with a dynamic batch", fn, [("export, run at batch 1 and 5", exported_file)])


def _expect_quantized(fn, x: torch.Tensor, what: str):
    got = call(fn, x)
    if not isinstance(got, tuple) or len(got) != 3:
        raise CheckFailed("return (q, scale, zero_point)")
    q, scale, zero_point = got
    expect_type(q, torch.Tensor, "q")
    if q.dtype != torch.uint8:
        raise CheckFailed(f"q should be torch.uint8, got {q.dtype}")
    if q.shape != x.shape:
        raise CheckFailed(f"q should have x's shape {tuple(x.shape)}, got {tuple(q.shape)}")
    if isinstance(scale, torch.Tensor) and scale.numel() == 1:
        scale = scale.item()
    if not is_real(scale) or not 0 < float(scale) < math.inf:
        raise CheckFailed(f"scale should be a positive number, got {scale!r}")
    if not is_int(zero_point) or not 0 <= zero_point <= 255:
        raise CheckFailed(f"zero_point must be an integer in [0, 255], got {zero_point!r}")
    scale, zero_point = float(scale), int(zero_point)
    low, high = min(x.min().item(), 0.0), max(x.max().item(), 0.0)
    if high > low and not math.isclose(scale, (high - low) / 255, rel_tol=1e-4):
        raise CheckFailed(f"{what}: scale {scale:.6g}, expected (max − min)/255 = {(high - low) / 255:.6g} over the "
                          "range [min(x, 0), max(x, 0)]")
    if high > low and abs(zero_point - (-low / scale)) > 0.5 + 1e-4:
        hint = " — int() truncates; round to the nearest integer" if zero_point == math.floor(-low / scale) else ""
        raise CheckFailed(f"{what}: zero_point {zero_point}, expected round(−min/scale) = round({-low / scale:.3f})"
                          f"{hint}")
    restored = scale * (q.double() - zero_point)
    error = (restored - x.double()).abs().max().item()
    if error > scale / 2 * (1 + 1e-3) + 1e-7:
        raise CheckFailed(f"{what}: round-trip error {error:.4g} exceeds half a step ({scale / 2:.4g}): round x/scale "
                          "to the nearest step and add the zero point")
    if (x == 0).any() and (restored[x == 0] != 0).any():
        raise CheckFailed(f"{what}: 0 does not come back exactly as 0")
    return zero_point


def check_quantize_uint8(fn):
    """``fn(x) -> (q uint8, scale, zero_point)`` with x ≈ scale · (q − zero_point) and 0 exactly representable."""
    def round_trip(fn):
        generator = torch.Generator().manual_seed(0)
        for x in (torch.randn(1000, generator=generator) * 3 + 1, torch.rand(500, generator=generator) * 5,
                  -torch.rand(200, generator=generator), torch.tensor([-1.0, 0.0, 0.5, 3.0]),
                  torch.tensor([[-0.3, 0.0], [2.7, 1.1]], dtype=torch.float64)):
            _expect_quantized(fn, x, f"for a tensor with range {x.min().item():.3g}…{x.max().item():.3g}")
        for x, expected_zero_point, side in ((torch.tensor([1.0, 2.0, 3.0]), 0, "positive"),
                                             (torch.tensor([-3.0, -1.0]), 255, "negative")):
            zero_point = _expect_quantized(fn, x, f"for an all-{side} tensor")
            if zero_point != expected_zero_point:
                raise CheckFailed(f"for an all-{side} tensor the zero point should be {expected_zero_point}, got "
                                  f"{zero_point}: extend the range to include 0, so 0 (padding, ReLU) is exact")

    def all_zeros(fn):
        x = torch.zeros(5)
        _expect_quantized(fn, x, "for an all-zero tensor")
        q, scale, zero_point = call(fn, x)
        restored = float(scale) * (q.double() - int(zero_point))
        if not torch.equal(restored, torch.zeros(5, dtype=torch.float64)):
            raise CheckFailed(f"an all-zero tensor must come back as zeros (min = max = 0: pick any scale, e.g. 1.0), "
                              f"got {restored.tolist()}")

    return run_checks("uint8 quantisation", fn, [("round trips of seven tensors", round_trip),
                                                 ("an all-zero tensor", all_zeros)])


def _onnx_runtime_per_channel(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """ONNX Runtime's own int8 weight quantiser (symmetric, range ±127), applied to each output channel."""
    from onnx import TensorProto
    from onnxruntime.quantization.quant_utils import quantize_data

    rows = weight.detach().double().reshape(len(weight), -1).numpy()
    quantised = [quantize_data(row, TensorProto.INT8, True) for row in rows]
    q = torch.from_numpy(np.stack([np.asarray(qs, dtype=np.int64) for _, _, qs in quantised])).reshape(weight.shape)
    return q, torch.tensor([float(scale) for _, scale, _ in quantised], dtype=torch.float64)


def _expect_per_channel(fn, weight: torch.Tensor, what: str) -> None:
    got = call(fn, weight)
    if not isinstance(got, tuple) or len(got) != 2:
        raise CheckFailed("return a pair (q, scales)")
    q, scales = got
    expect_type(q, torch.Tensor, "q")
    if q.dtype != torch.int8:
        hint = " (signed: symmetric weights go from −127 to 127)" if q.dtype == torch.uint8 else ""
        raise CheckFailed(f"q should be torch.int8, got {q.dtype}{hint}")
    if q.shape != weight.shape:
        raise CheckFailed(f"q should have the weight's shape {tuple(weight.shape)}, got {tuple(q.shape)}")
    if isinstance(scales, np.ndarray):
        scales = torch.from_numpy(scales)
    if not isinstance(scales, torch.Tensor) or scales.dtype not in (torch.float32, torch.float64):
        raise CheckFailed(f"scales should be a float tensor, got {type(scales).__name__}"
                          + (f" of {scales.dtype}" if isinstance(scales, torch.Tensor) else ""))
    channels = len(weight)
    if tuple(scales.shape) != (channels,):
        raise CheckFailed(f"{what}: scales has shape {tuple(scales.shape)}; expected one scale per output channel, "
                          f"shape ({channels},)")
    expected_q, expected_scales = _onnx_runtime_per_channel(weight)
    scales = scales.detach().double()
    if not torch.allclose(scales, expected_scales, rtol=1e-6, atol=0):
        largest = weight.detach().double().abs().reshape(channels, -1).amax(dim=1)
        if channels > 1 and torch.allclose(scales, torch.full_like(scales, largest.max().item() / 127), rtol=1e-6):
            hint = " — that is one scale for the whole tensor: take the largest |w| of each channel (dim 0)"
        elif torch.allclose(scales, largest / 128, rtol=1e-6):
            hint = " — divide by 127, so that −127·scale and 127·scale are the ends of the symmetric range"
        else:
            hint = ""
        index = int((scales - expected_scales).abs().argmax())
        raise CheckFailed(f"{what}: the scale of channel {index} is {scales[index].item():.6g}, expected "
                          f"max|w| / 127 = {expected_scales[index].item():.6g} (1.0 for an all-zero channel){hint}")
    ratio = weight.detach().double() / expected_scales.view(-1, *[1] * (weight.dim() - 1))
    at_tie = (ratio - ratio.floor() - 0.5).abs() < 1e-4  # x.5: either neighbour is a right rounding
    difference = (q.long() - expected_q).abs()
    wrong = (difference > 1) | ((difference == 1) & ~at_tie)
    if wrong.any():
        index = tuple(int(i) for i in wrong.nonzero()[0])
        hint = ""
        if torch.equal(q.long(), ratio.trunc().long()):
            hint = " — .to(torch.int8) truncates toward zero: round to the nearest step first"
        raise CheckFailed(f"{what}: q{list(index)} is {int(q[index])}, expected round({ratio[index].item():.4f}) = "
                          f"{int(expected_q[index])}{hint}")


def check_quantize_per_channel(fn):
    """``fn(weight C_out × …) -> (q int8, scales C_out)``: symmetric int8 with one scale per output channel."""
    def hand_made(fn):
        conv = torch.tensor([[[[0.5, -1.27, 0.3]]], [[[0.0, 0.02, -0.011]]]])  # 2 × 1 × 1 × 3
        _expect_per_channel(fn, conv, "a 2-channel conv weight whose channels differ 60-fold in size")
        linear = torch.tensor([[0.3, -0.9, 0.1], [0.0, 0.0, 0.0], [-2.5, 1.0, 0.2]], dtype=torch.float64)
        _expect_per_channel(fn, linear, "a 3 × 3 float64 weight with an all-zero channel and a negative largest value")
        _expect_per_channel(fn, torch.tensor([0.25, -3.0, 0.0, 1e-3]), "a 1-D weight (one value per channel)")

    def random_weights(fn):
        generator = torch.Generator().manual_seed(0)
        outlier = torch.randn(16, 32, generator=generator) * 0.05
        outlier[3] *= 50  # one channel 50× larger: per-tensor scales would flatten the others
        cases = [(outlier, "a 16 × 32 linear weight with one outlier channel"),
                 (torch.randn(8, 3, 3, 3, generator=generator, dtype=torch.float64), "an 8 × 3 × 3 × 3 float64 conv weight"),
                 (torch.randn(1, 5, generator=generator), "a single output channel"),
                 (torch.randn(6, 1, generator=generator), "one weight per channel"),
                 (torch.nn.Conv2d(3, 4, 3).weight, "a Conv2d's weight (an nn.Parameter that requires grad)")]
        for weight, what in cases:
            _expect_per_channel(fn, weight, what)

    return run_checks("per-channel int8 quantisation", fn, [("hand-made weights", hand_made),
                                                            ("random weights, float32 and float64", random_weights)])
