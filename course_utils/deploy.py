"""Chapter 08's deployment helpers: ONNX export and sessions, a latency harness, and measured model selection.

* :func:`export_onnx` - ``torch.onnx.export`` with named inputs/outputs, a dynamic batch axis and
  ``onnx.checker``; :func:`onnx_session` opens it in ONNX Runtime with a stated number of threads.
* :func:`measure_latency` - warm-up, repeated timing with ``time.perf_counter``, median / p90 / mean in ms.
* :func:`file_size_mb` - the size of a saved model.
* :func:`select_model` - the most accurate candidate within latency, accuracy and size budgets (near-ties go
  to the faster one), chosen from *measured* numbers (the course notes' version was a hard-coded lookup table).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch


def export_onnx(model: torch.nn.Module, example: torch.Tensor, path: str | Path, *, opset: int = 18,
                input_name: str = "images", output_name: str = "logits", dynamic_batch: bool = True) -> Path:
    """Export ``model`` (in eval mode) to ONNX at ``path``, check the file, and return its path.

    Uses the ``torch.export``-based exporter (``dynamo=True``: added in PyTorch 2.5, the default since 2.9) when
    ``onnxscript`` is installed, otherwise the TorchScript-based one; both give named inputs/outputs and, with
    ``dynamic_batch``, a symbolic batch dimension. Give an example batch of at least 2: with batch 1 a tracer may
    specialise the batch dimension to the constant 1.
    """
    import onnx

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = model.eval()
    try:
        import onnxscript  # noqa: F401 - the dynamo exporter needs it

        dynamo = True
    except ImportError:
        dynamo = False
    kwargs = {"input_names": [input_name], "output_names": [output_name], "opset_version": opset}
    if dynamo:
        if dynamic_batch:
            kwargs["dynamic_shapes"] = ({0: torch.export.Dim("batch", min=1, max=4096)},)
        torch.onnx.export(model, (example,), str(path), dynamo=True, external_data=False, verbose=False, **kwargs)
    else:
        if dynamic_batch:
            kwargs["dynamic_axes"] = {input_name: {0: "batch"}, output_name: {0: "batch"}}
        torch.onnx.export(model, (example,), str(path), dynamo=False, do_constant_folding=True, **kwargs)
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    return path


def onnx_session(path: str | Path, threads: int | None = None, providers: Sequence[str] = ("CPUExecutionProvider",)):
    """An ONNX Runtime session on the CPU unless ``providers`` says otherwise (in order of preference, e.g.
    ``["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]``); ``threads`` sets the
    intra-op threads (state it when you report latency). Providers this onnxruntime build lacks are dropped."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    available = ort.get_available_providers()
    chosen = [p for p in providers if p in available] or ["CPUExecutionProvider"]
    return ort.InferenceSession(str(path), sess_options=options, providers=chosen)


def file_size_mb(path: str | Path) -> float:
    return Path(path).stat().st_size / 1e6


@dataclass
class Latency:
    """Per-call latency in milliseconds over ``repeats`` timed calls (after ``warmup`` untimed ones)."""

    median_ms: float
    p90_ms: float
    mean_ms: float
    min_ms: float
    repeats: int
    batch_size: int

    @property
    def throughput(self) -> float:
        """Images per second at the median latency."""
        return self.batch_size / (self.median_ms / 1000)


def measure_latency(fn: Callable[[], object], *, batch_size: int = 1, warmup: int = 5, repeats: int = 30,
                    synchronize: Callable[[], None] | None = None) -> Latency:
    """Time ``fn()``: ``warmup`` untimed calls (caches, lazy init, JIT), then ``repeats`` timed ones.

    On a GPU pass ``synchronize=torch.cuda.synchronize``: kernels run asynchronously, and without it you
    time the launch, not the work.
    """
    if repeats < 2:
        raise ValueError("repeats must be at least 2 to report a spread")
    for _ in range(warmup):
        fn()
    if synchronize:
        synchronize()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        if synchronize:
            synchronize()
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    p90_index = min(len(times) - 1, max(0, round(0.9 * (len(times) - 1))))
    return Latency(statistics.median(times), times[p90_index], statistics.fmean(times), times[0], repeats, batch_size)


@dataclass
class Candidate:
    name: str
    latency_ms: float
    accuracy: float
    size_mb: float = 0.0


def select_model(candidates: Sequence[Candidate], *, max_latency_ms: float | None = None,
                 min_accuracy: float | None = None, max_size_mb: float | None = None,
                 accuracy_tolerance: float = 0.0) -> Candidate | None:
    """The most accurate candidate within the budgets; None when none qualifies.

    Candidates within ``accuracy_tolerance`` of the best accuracy count as tied (a test set measures accuracy
    only to about ±√(p(1−p)/n)), and among tied ones the fastest wins.
    """
    feasible = [c for c in candidates
                if (max_latency_ms is None or c.latency_ms <= max_latency_ms)
                and (min_accuracy is None or c.accuracy >= min_accuracy)
                and (max_size_mb is None or c.size_mb <= max_size_mb)]
    if not feasible:
        return None
    best = max(c.accuracy for c in feasible)
    tied = [c for c in feasible if c.accuracy >= best - accuracy_tolerance]
    return min(tied, key=lambda c: (c.latency_ms, -c.accuracy))
