"""Checkers for chapter 08's exercises (ONNX export with a dynamic batch, a latency helper, uint8 quantisation)."""

from __future__ import annotations

import math
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..checks import CheckFailed, expect_type, run_checks


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


def check_measure(fn):
    """``fn(fn_to_time, warmup, repeats) -> (median_ms, p90_ms)``, warm-up calls untimed."""
    def sequence(fn):
        timed = [0.002] * 17 + [0.012] * 2 + [0.030]  # median 2 ms, p90 12 ms, mean 4.4 ms, max 30 ms
        order = [0, 1, 17, 2, 3, 4, 19, 5, 6, 7, 8, 18, 9, 10, 11, 12, 13, 14, 15, 16]  # not sorted
        durations = iter([0.040, 0.040] + [timed[i] for i in order])  # 2 slow warm-up calls first
        calls = []

        def work():
            calls.append(1)
            time.sleep(next(durations))

        got = fn(work, 2, 20)
        if not isinstance(got, tuple) or len(got) != 2:
            raise CheckFailed("return a pair (median_ms, p90_ms)")
        median, p90 = got
        if len(calls) != 22:
            raise CheckFailed(f"expected 2 warm-up + 20 timed calls, fn was called {len(calls)} times")
        if median < 0.5:
            raise CheckFailed(f"median {median} is far too small: report milliseconds, not seconds")
        if 3.5 < median < 6:
            raise CheckFailed(f"{median:.2f} ms looks like the mean (4.4 ms here); the median of these calls is 2 ms")
        if not 1.5 <= median <= 3.5:
            raise CheckFailed(f"17 of the 20 timed calls took 2 ms; the median should be near 2 ms, got {median:.2f}")
        if p90 >= 25:
            raise CheckFailed(f"p90 = {p90:.1f} ms is the slowest call (or a warm-up call): sort the timed calls and "
                              "take the value 90 % of the way up (about 12 ms here)")
        if not 9 <= p90 < 25:
            raise CheckFailed(f"p90 should be about 12 ms here, got {p90:.2f}")

    return run_checks("latency helper", fn, [("2 warm-up + 20 timed calls", sequence)])


def check_quantize_uint8(fn):
    """``fn(x) -> (q uint8, scale, zero_point)`` with x ≈ scale · (q − zero_point) and 0 exactly representable."""
    def round_trip(fn):
        generator = torch.Generator().manual_seed(0)
        for x in (torch.randn(1000, generator=generator) * 3 + 1, torch.rand(500, generator=generator) * 5,
                  -torch.rand(200, generator=generator)):
            got = fn(x.clone())
            if not isinstance(got, tuple) or len(got) != 3:
                raise CheckFailed("return (q, scale, zero_point)")
            q, scale, zero_point = got
            expect_type(q, torch.Tensor, "q")
            if q.dtype != torch.uint8:
                raise CheckFailed(f"q should be torch.uint8, got {q.dtype}")
            if not isinstance(zero_point, int) or not 0 <= zero_point <= 255:
                raise CheckFailed(f"zero_point must be an int in [0, 255], got {zero_point!r}")
            restored = float(scale) * (q.float() - zero_point)
            error = (restored - x).abs().max().item()
            if error > float(scale) / 2 + 1e-6:
                raise CheckFailed(f"round-trip error {error:.4f} exceeds half a step ({float(scale) / 2:.4f}): "
                                  "does the range [min, max] map onto 0…255?")
            if float(scale) > (max(x.max().item(), 0) - min(x.min().item(), 0)) / 255 * 1.01:
                raise CheckFailed("the scale is larger than needed: use (max − min) / 255 over the range of x")
        for x, expected_zero_point, side in ((torch.tensor([1.0, 2.0, 3.0]), 0, "positive"),
                                             (torch.tensor([-3.0, -1.0]), 255, "negative")):
            _, scale, zero_point = fn(x.clone())
            if zero_point != expected_zero_point:
                raise CheckFailed(f"for an all-{side} tensor the zero point should be {expected_zero_point}, got "
                                  f"{zero_point}: extend the range to include 0, so 0 (padding, ReLU) is exact")

    return run_checks("uint8 quantisation", fn, [("round trips of three tensors", round_trip)])
