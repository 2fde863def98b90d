"""Checkers for chapter 08's exercises (ONNX export with a dynamic batch, a latency helper, uint8 quantisation)."""

from __future__ import annotations

import math
import tempfile
import time
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


class _PlannedClock:
    """While active, time.perf_counter/time.time (and their _ns forms) advance only by the planned durations.

    So a helper timed with them sees exact durations however busy the machine is; one that holds its own
    clock function still sees the real ``time.sleep`` of each call.
    """

    NAMES = ("perf_counter", "perf_counter_ns", "time", "time_ns", "monotonic", "monotonic_ns")

    def __init__(self):
        self.now = 1000.0
        self.saved = {}

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def _read(self) -> float:
        self.now += 1e-9  # strictly increasing, as a real clock
        return self.now

    def __enter__(self):
        self.saved = {name: getattr(time, name) for name in self.NAMES}
        for name in self.NAMES:
            setattr(time, name, (lambda: int(self._read() * 1e9)) if name.endswith("_ns") else self._read)
        return self

    def __exit__(self, *exc):
        for name, function in self.saved.items():
            setattr(time, name, function)


def _timed_run(fn, warmup: int, repeats: int, durations: list[float], use_defaults: bool = False):
    calls = []
    sleep = time.sleep
    planned = iter(durations)
    with _PlannedClock() as clock:
        def work():
            calls.append(1)
            duration = next(planned, 0.0)
            sleep(duration)
            clock.advance(duration)

        got = fn(work) if use_defaults else fn(work, warmup, repeats)
    if not isinstance(got, tuple) or len(got) != 2:
        raise CheckFailed("return a pair (median_ms, p90_ms)")
    if len(calls) != warmup + repeats:
        raise CheckFailed(f"expected {warmup} warm-up + {repeats} timed calls"
                          + (" (the defaults warmup=3, repeats=20)" if use_defaults else "")
                          + f", fn was called {len(calls)} times")
    if not all(is_real(v) for v in got):
        raise CheckFailed(f"return two numbers, got {[type(v).__name__ for v in got]}")
    return float(got[0]), float(got[1])


def check_measure(fn):
    """``fn(fn_to_time, warmup, repeats) -> (median_ms, p90_ms)``, warm-up calls untimed."""
    def sequence(fn):
        timed = [0.002] * 17 + [0.012] * 2 + [0.030]  # median 2 ms, p90 12 ms, mean 4.4 ms, max 30 ms
        order = [0, 1, 17, 2, 3, 4, 19, 5, 6, 7, 8, 18, 9, 10, 11, 12, 13, 14, 15, 16]  # not sorted
        median, p90 = _timed_run(fn, 2, 20, [0.040, 0.040] + [timed[i] for i in order])  # 2 slow warm-up calls
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

    def short_sequence(fn):
        # 1 warm-up call of 30 ms, then 5 timed calls: sorted 1, 2, 3, 4, 9 ms → median 3 ms, p90 between 4 and 9
        median, p90 = _timed_run(fn, 1, 5, [0.030, 0.003, 0.001, 0.002, 0.009, 0.004])
        if not 2.4 <= median <= 3.9:
            raise CheckFailed(f"timed calls of 3, 1, 2, 9 and 4 ms have median 3 ms, got {median:.2f} "
                              "(use the warmup and repeats arguments)")
        if not 4 <= p90 <= 10.5:
            raise CheckFailed(f"timed calls of 3, 1, 2, 9 and 4 ms have a p90 between 4 and 9 ms, got {p90:.2f}")

    def defaults(fn):
        median, _ = _timed_run(fn, 3, 20, [0.001] * 23, use_defaults=True)
        if not 0.5 <= median <= 2.5:
            raise CheckFailed(f"20 timed calls of 1 ms have median 1 ms, got {median:.2f}")

    return run_checks("latency helper", fn, [("2 warm-up + 20 timed calls", sequence),
                                             ("1 warm-up + 5 timed calls", short_sequence),
                                             ("the defaults: 3 warm-up + 20 timed calls", defaults)])


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
