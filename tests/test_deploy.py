"""Chapter 08's deployment helpers: ONNX export equal to PyTorch, the latency harness, measured model selection."""

import numpy as np
import onnx
import pytest
import torch
from torch import nn

from course_utils import deploy, models


@pytest.fixture(scope="module")
def small_cnn():
    torch.manual_seed(0)
    return models.SmallCNN().eval()


@pytest.mark.parametrize("dynamo", [True, False], ids=["dynamo", "torchscript"])
def test_onnx_export_is_checked_named_dynamic_and_equal_to_pytorch(small_cnn, tmp_path, monkeypatch, dynamo):
    if not dynamo:  # the TorchScript exporter is the fallback when onnxscript is missing
        import builtins

        real_import = builtins.__import__
        monkeypatch.setattr(builtins, "__import__", lambda name, *a, **k: (_ for _ in ()).throw(ImportError(name))
                            if name == "onnxscript" else real_import(name, *a, **k))
    path = deploy.export_onnx(small_cnn, torch.zeros(1, 1, 28, 28), tmp_path / "cnn.onnx")
    graph = onnx.load(str(path)).graph
    assert [i.name for i in graph.input] == ["images"] and [o.name for o in graph.output] == ["logits"]
    batch_dim = graph.input[0].type.tensor_type.shape.dim[0]
    assert batch_dim.dim_param and not batch_dim.dim_value, "the batch dimension is symbolic"
    session = deploy.onnx_session(path, threads=1)
    for batch_size in (1, 8):
        images = torch.randn(batch_size, 1, 28, 28)
        with torch.no_grad():
            expected = small_cnn(images).numpy()
        got = session.run(None, {"images": images.numpy()})[0]
        assert got.shape == (batch_size, 10)
        np.testing.assert_allclose(got, expected, atol=1e-4, rtol=1e-4)
    assert deploy.file_size_mb(path) > 0.1


def test_measure_latency_counts_warmup_and_orders_statistics():
    calls = []
    latency = deploy.measure_latency(lambda: calls.append(1), batch_size=4, warmup=3, repeats=10)
    assert len(calls) == 13 and latency.repeats == 10
    assert latency.min_ms <= latency.median_ms <= latency.p90_ms
    assert latency.throughput == pytest.approx(4 / (latency.median_ms / 1000))
    synced = []
    deploy.measure_latency(lambda: None, warmup=1, repeats=3, synchronize=lambda: synced.append(1))
    assert len(synced) == 4  # after the warm-up and after each timed call
    with pytest.raises(ValueError):
        deploy.measure_latency(lambda: None, repeats=1)


def test_measure_latency_sees_a_slower_function():
    import time

    fast = deploy.measure_latency(lambda: None, repeats=5)
    slow = deploy.measure_latency(lambda: time.sleep(0.01), repeats=5)
    assert slow.median_ms >= 9 > fast.median_ms


def test_select_model_uses_the_measurements():
    candidates = [deploy.Candidate("tiny", 1.0, 0.80, 0.5), deploy.Candidate("medium", 5.0, 0.90, 4.0),
                  deploy.Candidate("large", 20.0, 0.93, 40.0), deploy.Candidate("medium-fast", 4.0, 0.90, 4.0)]
    assert deploy.select_model(candidates).name == "large"
    assert deploy.select_model(candidates, max_latency_ms=10).name == "medium-fast"  # tie on accuracy: faster
    assert deploy.select_model(candidates, max_latency_ms=10, max_size_mb=1).name == "tiny"
    assert deploy.select_model(candidates, min_accuracy=0.95) is None


def test_onnx_session_falls_back_to_the_cpu_provider(tmp_path):
    path = deploy.export_onnx(nn.Linear(3, 2).eval(), torch.zeros(1, 3), tmp_path / "linear.onnx",
                              input_name="x", output_name="y")
    session = deploy.onnx_session(path, providers=["NoSuchExecutionProvider", "CPUExecutionProvider"])
    assert session.get_providers() == ["CPUExecutionProvider"]


def _notebook_function(name, **namespace):
    """``name`` as chapter 08's notebook defines it in a cell (the cell is run with ``namespace``)."""
    from test_notebooks import notebook_definitions

    return notebook_definitions("08_deployment.ipynb", name, **namespace)[name]


def _graph_summary(path):
    graph = onnx.load(str(path)).graph
    shape = [[d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]
             for value in (*graph.input, *graph.output)]
    return ([value.name for value in (*graph.input, *graph.output)], shape, [node.op_type for node in graph.node],
            sorted((tensor.name, tuple(tensor.dims)) for tensor in graph.initializer))


@pytest.mark.parametrize("dynamo", [True, False], ids=["dynamo", "torchscript"])
def test_the_notebooks_export_onnx_is_course_utils_export_onnx(small_cnn, tmp_path, monkeypatch, dynamo):
    from pathlib import Path

    notebook_export = _notebook_function("export_onnx", Path=Path, torch=torch, onnx=onnx)
    if not dynamo:
        import builtins

        real_import = builtins.__import__
        monkeypatch.setattr(builtins, "__import__", lambda name, *a, **k: (_ for _ in ()).throw(ImportError(name))
                            if name == "onnxscript" else real_import(name, *a, **k))
    example = torch.zeros(2, 1, 28, 28)
    ours = notebook_export(small_cnn, example, tmp_path / "ours" / "cnn.onnx")
    theirs = deploy.export_onnx(small_cnn, example, tmp_path / "theirs" / "cnn.onnx")
    assert _graph_summary(ours) == _graph_summary(theirs)
    images = np.random.default_rng(0).standard_normal((3, 1, 28, 28)).astype(np.float32)
    outputs = [deploy.onnx_session(path, threads=1).run(None, {"images": images})[0] for path in (ours, theirs)]
    np.testing.assert_array_equal(*outputs)
    fixed = notebook_export(nn.Linear(3, 2), torch.zeros(2, 3), tmp_path / "fixed.onnx", input_name="x",
                            output_name="y", dynamic_batch=False)
    assert _graph_summary(fixed)[:2] == (["x", "y"], [[2, 3], [2, 2]])


def _timed_with_a_known_clock(measure, monkeypatch):
    import time

    ticks = iter(range(0, 10_000, 7))  # every clock reading comes 7 ms after the one before
    monkeypatch.setattr(time, "perf_counter", lambda: next(ticks) / 1000)
    calls, synced = [], []
    latency = measure(lambda: calls.append(1), batch_size=4, warmup=3, repeats=9, synchronize=lambda: synced.append(1))
    monkeypatch.undo()
    return latency, len(calls), len(synced)


def test_the_notebooks_measure_latency_is_course_utils_measure_latency(monkeypatch):
    import time

    notebook_measure = _notebook_function("measure_latency", time=time, deploy=deploy)
    ours = _timed_with_a_known_clock(notebook_measure, monkeypatch)
    assert ours == _timed_with_a_known_clock(deploy.measure_latency, monkeypatch)
    assert ours[0].median_ms == pytest.approx(7) and ours[1:] == (12, 10)
    with pytest.raises(ValueError, match="at least 2"):
        notebook_measure(lambda: None, repeats=1)
