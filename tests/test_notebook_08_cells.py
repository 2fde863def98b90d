"""Chapter 08 writes its DDP training loop and its Gradio app out in cells: they must equal course_utils' copies.

(``ddp_train.train_steps`` is what ``torchrun -m course_utils.ddp_train`` runs and ``app.build_app`` what
``python -m course_utils.app`` serves; the notebook's cells are what a student reads and edits. The tests of
the modules themselves are in test_ddp.py and test_app.py.)
"""

import json
import os
import tempfile
from pathlib import Path

import pytest
import torch
import torch.distributed as dist

from course_utils import app, ddp_train, models

ROOT = Path(__file__).resolve().parents[1]
MIRROR = Path(os.environ.get("COURSE_ASSET_MIRROR") or ROOT.parent / "shared" / "assets")
FASHION_MNIST = (MIRROR / "data" / "FashionMNIST").is_dir() or (ROOT / "data" / "FashionMNIST").is_dir()
needs_fashion_mnist = pytest.mark.skipif(not FASHION_MNIST, reason="Fashion-MNIST is neither cached nor in an "
                                         "offline mirror (set COURSE_ASSET_MIRROR)")


def _notebook_namespace(name, **namespace):
    """Run the cell of chapter 08 that defines ``name`` (and the cells defining what it uses)."""
    from test_notebooks import notebook_definitions

    return notebook_definitions("08_deployment.ipynb", name, **namespace)


def _train(loop, rank, world, frozen_norm):
    torch.manual_seed(0)
    model = models.SmallCNN(widths=(4, 8), hidden=16, dropout=0.3)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    data = torch.Generator().manual_seed(5)
    images, labels = torch.randn(64, 1, 28, 28, generator=data), torch.randint(0, 10, (64,), generator=data)
    torch.manual_seed(1)  # the dropout masks
    losses = loop(model, optimizer, images, labels, steps=4, global_batch=8, rank=rank, world=world,
                  frozen_norm=frozen_norm, seed=3)
    return losses, model.state_dict()


@pytest.mark.parametrize("frozen_norm", [True, False], ids=["frozen-norm", "ordinary"])
@pytest.mark.parametrize("rank,world", [(0, 1), (1, 2)], ids=["one-process", "rank-1-of-2"])
def test_the_notebooks_training_loop_is_ddp_train_steps(monkeypatch, rank, world, frozen_norm):
    notebook_loop = _notebook_namespace("train_steps", torch=torch)["train_steps"]
    reduced = []
    monkeypatch.setattr(dist, "all_reduce", lambda tensor, *a, **k: reduced.append(tensor.item()))  # no group
    ours, theirs = _train(notebook_loop, rank, world, frozen_norm), _train(ddp_train.train_steps, rank, world,
                                                                            frozen_norm)
    assert ours[0] == theirs[0] and len(ours[0]) == 4
    for name, tensor in theirs[1].items():
        torch.testing.assert_close(ours[1][name], tensor, rtol=0, atol=0, msg=name)
    assert len(reduced) == (8 if world > 1 else 0), "the logged loss is all-reduced once per step and process"


@needs_fashion_mnist
def test_train_takes_a_loop_an_optimizer_and_a_dtype(monkeypatch):
    for variable in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("COURSE_ASSET_MIRROR", str(MIRROR))
    seen = {}

    def loop(model, optimizer, images, labels, **options):
        seen.update(options, optimizer=type(optimizer).__name__, dtype=images.dtype,
                    parameter_dtype=next(model.parameters()).dtype)
        return [1.0]

    result = ddp_train.train(steps=3, global_batch=16, lr=1e-3, frozen_norm=True, optimizer="adam",
                             dtype="float64", loop=loop)
    assert seen == {"steps": 3, "global_batch": 16, "rank": 0, "world": 1, "frozen_norm": True, "seed": 0,
                    "optimizer": "Adam", "dtype": torch.float64, "parameter_dtype": torch.float64}
    assert result["losses"] == [1.0] and result["dtype"] == "float64" and result["optimizer"] == "adam"
    with pytest.raises(ValueError, match="dtype"):
        ddp_train.train(steps=1, global_batch=8, lr=0.1, frozen_norm=True, dtype="float16")
    with pytest.raises(ValueError, match="optimizer"):
        ddp_train.train(steps=1, global_batch=8, lr=0.1, frozen_norm=True, optimizer="lbfgs")


class _Model:
    """Stands in for the models behind the tabs: building the app only wires up their ``predict``."""

    def predict(self, image, top_k=3):
        return {}


def _structure(blocks):
    """The app's layout tree and its events, with gradio's process-wide component ids replaced by descriptions."""
    config = blocks.get_config_file()
    described = {c["id"]: (c["type"], c["props"].get("label"),
                           c["props"].get("value") if c["type"] in ("markdown", "button", "tabitem") else None)
                 for c in config["components"]}

    def tree(node):
        return described.get(node["id"], "root"), [tree(child) for child in node.get("children", [])]

    events = sorted((str(d.get("api_name")), [described[i] for i in d["inputs"]], [described[o] for o in d["outputs"]])
                    for d in config["dependencies"])
    return config["title"], tree(config["layout"]), events


@needs_fashion_mnist
@pytest.mark.parametrize("optional_tabs", [True, False], ids=["four-tabs", "without-imagenet-and-detector"])
def test_the_notebooks_app_is_course_utils_build_app(tmp_path, monkeypatch, optional_tabs):
    pytest.importorskip("gradio")
    monkeypatch.setenv("COURSE_ASSET_MIRROR", str(MIRROR))
    monkeypatch.setenv("GRADIO_ANALYTICS_ENABLED", "False")
    build_app = _notebook_namespace("build_app", Path=Path, tempfile=tempfile)["build_app"]
    extra = {"detector": _Model(), "imagenet": _Model()} if optional_tabs else {}
    ours = build_app(_Model(), examples_dir=tmp_path / "ours", **extra)
    theirs = app.build_app(_Model(), examples_dir=tmp_path / "theirs", **extra)
    assert _structure(ours) == _structure(theirs)
    api_names = {event[0] for event in _structure(ours)[2]}
    assert {"classify", "benchmark"} <= api_names and ({"imagenet", "detect"} <= api_names) == optional_tabs


@needs_fashion_mnist
def test_main_runs_the_loop_a_file_defines(monkeypatch, tmp_path):
    for variable in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("COURSE_ASSET_MIRROR", str(MIRROR))
    loop_file = tmp_path / "ddp_loop.py"  # what chapter 08's %%writefile cell writes, reduced to its contract
    loop_file.write_text("def train_steps(model, optimizer, images, labels, *, steps, **options):\n"
                         "    return [float(steps), float(len(images) > 0)]\n")
    out = tmp_path / "result.json"
    assert ddp_train.main(["--steps", "3", "--global-batch", "8", "--frozen-norm", "--out", str(out),
                           "--loop", str(loop_file)]) == 0
    assert json.loads(out.read_text())["losses"] == [3.0, 1.0]
