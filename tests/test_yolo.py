"""course_utils.yolo: Ultralytics training kept in the course's checkpoint format."""

import numpy as np
import pytest
import torch

from course_utils import shapes, yolo


@pytest.fixture(autouse=True)
def offline_ultralytics(tmp_path, monkeypatch):
    monkeypatch.setenv("YOLO_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)  # Ultralytics may write next to the working directory


def test_device_argument():
    assert yolo.device_argument("cpu") == "cpu"
    assert yolo.device_argument(torch.device("cuda", 1)) == 1
    assert yolo.device_argument("cuda") == 0
    with pytest.raises(ValueError, match="cpu, cuda or mps"):
        yolo.device_argument("meta")


def test_train_arguments_need_the_yaml_and_keep_overrides(tmp_path):
    with pytest.raises(FileNotFoundError, match="export_yolo"):
        yolo.train_arguments(tmp_path / "missing.yaml", tmp_path, "run")
    data_yaml = shapes.export_yolo(tmp_path / "data", n_train=2, n_val=1, image_size=32)
    args = yolo.train_arguments(data_yaml, tmp_path / "runs", "run", epochs=3, plots=True)
    assert args["data"] == str(data_yaml) and args["epochs"] == 3 and args["plots"] is True
    assert args["workers"] == 0 and args["device"] == "cpu" and args["name"] == "run"


def test_read_history_renames_columns(tmp_path):
    (tmp_path / "results.csv").write_text("epoch,train/box_loss,metrics/mAP50(B),val/cls_loss\n"
                                          "1,2.5,0.1,3.0\n2,2.0,0.4,2.5\n")
    history = yolo.read_history(tmp_path)
    assert history == {"epoch": [1, 2], "train_box_loss": [2.5, 2.0], "val_mAP50(B)": [0.1, 0.4],
                       "val_cls_loss": [3.0, 2.5]}
    with pytest.raises(FileNotFoundError, match="results.csv"):
        yolo.read_history(tmp_path / "nowhere")



def _history_without_validation_until_the_end():
    """What results.csv gives with val=False: 0 in every val_ column except after the last epoch."""
    return {"epoch": [1, 2, 3], "train_box_loss": [3.0, 2.0, 1.5], "val_box_loss": [0.0, 0.0, 1.7],
            "val_mAP50(B)": [0.0, 0.0, 0.9]}


def test_validated_epochs_and_measured_history_drop_the_unmeasured_zeros():
    history = _history_without_validation_until_the_end()
    assert yolo.validated_epochs(history) == [3]
    measured = yolo.measured_history(history)
    assert np.isnan(measured["val_box_loss"][:2]).all() and measured["val_box_loss"][2] == 1.7
    assert measured["train_box_loss"] == history["train_box_loss"] and history["val_box_loss"][0] == 0.0
    every_epoch = {**history, "val_box_loss": [2.5, 2.0, 1.7], "val_mAP50(B)": [0.1, 0.5, 0.9]}
    assert yolo.validated_epochs(every_epoch) == [1, 2, 3] and yolo.measured_history(every_epoch) == every_epoch
    never = {**history, "val_box_loss": [0.0] * 3, "val_mAP50(B)": [0.0] * 3}
    assert yolo.validated_epochs(never) == [] and sorted(yolo.measured_history(never)) == ["epoch", "train_box_loss"]


def test_plot_losses_draws_only_measured_validation_points():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = yolo.plot_losses(_history_without_validation_until_the_end(), ("box_loss", "cls_loss"), title="t")
    (ax,) = fig.axes  # cls_loss is not in the history: one panel
    train_line, val_line = ax.get_lines()
    assert list(train_line.get_ydata()) == [3.0, 2.0, 1.5]
    val_y = np.asarray(val_line.get_ydata(), dtype=float)
    assert np.isnan(val_y[:2]).all() and val_y[2] == 1.7, "unvalidated epochs must not be drawn as 0"
    assert "epoch 3 only" in val_line.get_label() and ax.get_xlabel() == "epoch" and ax.get_ylabel() == "box_loss"
    never = {"epoch": [1, 2], "train_box_loss": [2.0, 1.0], "val_box_loss": [0.0, 0.0]}
    fig_never = yolo.plot_losses(never, ("box_loss",), title="t")
    assert len(fig_never.axes[0].get_lines()) == 1 and "no validation" in fig_never._suptitle.get_text()
    with pytest.raises(ValueError, match="train_seg_loss"):
        yolo.plot_losses(never, ("seg_loss",))
    plt.close("all")

def test_ultralytics_keeps_the_torch_thread_count():
    from ultralytics.utils.torch_utils import select_device

    previous = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        yolo.quiet()
        select_device("cpu", verbose=False)  # what every train/val/predict call runs
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(previous)


def test_wrap_checks_names_and_predicts():
    from ultralytics.nn.tasks import DetectionModel

    model = DetectionModel("yolov8n.yaml", nc=3, verbose=False)
    with pytest.raises(ValueError, match="predicts 3 classes but 2 names"):
        yolo.wrap(model, ["a", "b"])
    wrapped = yolo.wrap(model, shapes.CLASSES)
    assert wrapped.model is model and wrapped.names == {0: "circle", 1: "square", 2: "triangle"}
    result = wrapped.predict(np.zeros((64, 64, 3), dtype=np.uint8), imgsz=64, verbose=False, device="cpu")[0]
    assert result.boxes.xyxy.shape[-1] == 4


def test_train_into_copies_the_trained_weights(tmp_path):
    from ultralytics.nn.tasks import DetectionModel

    data_yaml = shapes.export_yolo(tmp_path / "data", n_train=8, n_val=4, image_size=32)
    model = DetectionModel("yolov8n.yaml", nc=3, verbose=False)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    history = yolo.train_into(model, "yolov8n.yaml", **yolo.train_arguments(
        data_yaml, tmp_path / "runs", "tiny", epochs=1, imgsz=32, batch=4, val=False))
    assert history["epoch"] == [1] and "train_box_loss" in history
    changed = [k for k, v in model.state_dict().items() if v.is_floating_point() and not torch.equal(v, before[k])]
    assert changed, "no weight was copied from the trained network"
    with pytest.raises(ValueError, match="does not fit the given model"):
        yolo.train_into(DetectionModel("yolov8n.yaml", nc=5, verbose=False), "yolov8n.yaml", **yolo.train_arguments(
            data_yaml, tmp_path / "runs", "tiny2", epochs=1, imgsz=32, batch=4, val=False))
    again = yolo.train_into(model, "yolov8n.yaml", **yolo.train_arguments(
        data_yaml, tmp_path / "runs", "tiny", epochs=1, imgsz=32, batch=4, val=False))
    assert again["epoch"] == [1], "a re-run into the same folder must not inherit the previous run's epochs"


def test_shapes_yolov8n_is_chapter_03s_class_importable_and_picklable():
    import json
    import pickle
    from pathlib import Path

    from course_utils import train

    network = yolo.ShapesYOLOv8n(nc=3)
    train.load_checkpoint("ch03_yolov8n_shapes", network)  # the class name and every tensor shape must match
    assert isinstance(network, yolo.ShapesYOLOv8n) and type(network).__module__ == "course_utils.yolo"
    assert isinstance(pickle.loads(pickle.dumps(network)), yolo.ShapesYOLOv8n)
    notebook = json.loads((Path(__file__).resolve().parents[1] / "notebooks" / "03_detection.ipynb").read_text())
    sources = ["".join(cell["source"]) for cell in notebook["cells"] if cell["cell_type"] == "code"]
    defining = next(source for source in sources if "class ShapesYOLOv8n(" in source)
    assert 'super().__init__("yolov8n.yaml", nc=nc, verbose=False)' in defining, "chapter 03 builds the same network"
    with pytest.raises(AttributeError):
        yolo.NoSuchThing  # noqa: B018


def test_wrap_gives_an_exportable_model():
    network = yolo.ShapesYOLOv8n(nc=3)
    wrapper = yolo.wrap(network.eval(), shapes.CLASSES)
    assert network.args["imgsz"] == 640 and network.args["data"] is None and network.task == "detect"
    assert wrapper.model is network
