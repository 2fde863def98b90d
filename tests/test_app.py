"""Chapter 08's Gradio app, started as a script on 127.0.0.1 and called with gradio_client."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from course_utils import app, data, shapes

ROOT = Path(__file__).resolve().parents[1]
MIRROR = Path(os.environ.get("COURSE_ASSET_MIRROR") or ROOT.parent / "shared" / "assets")
pytestmark = pytest.mark.skipif(not (MIRROR / "data" / "FashionMNIST").is_dir()
                                and not (ROOT / "data" / "FashionMNIST").is_dir(),
                                reason="Fashion-MNIST is neither cached nor in an offline mirror")


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    port = _free_port()
    environment = {**os.environ, "COURSE_ASSET_MIRROR": str(MIRROR), "GRADIO_ANALYTICS_ENABLED": "False",
                   "YOLO_OFFLINE": "1", "MPLBACKEND": "Agg"}
    log_path = tmp_path_factory.mktemp("app") / "server.log"
    with open(log_path, "w") as log:  # a file, not a pipe: a full pipe would block the server
        server = subprocess.Popen([sys.executable, "-m", "course_utils.app", "--host", "127.0.0.1", "--port", str(port)],
                                  cwd=ROOT, env=environment, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 180
        while True:
            if server.poll() is not None:
                pytest.fail("the app exited:\n" + log_path.read_text()[-3000:])
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail("the app did not start within 180 s:\n" + log_path.read_text()[-3000:])
                time.sleep(0.5)
        yield f"http://127.0.0.1:{port}/"
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=30)


@pytest.fixture(scope="module")
def client(app_url):
    client = app.connect(app_url)
    yield client
    client.close()


def test_the_classifier_tab_names_fashion_items(client, tmp_path_factory):
    from gradio_client import handle_file

    images, labels = data.tensor_dataset("fashion-mnist", train=False, normalize=False).tensors
    names = data.class_names("fashion-mnist")
    folder = tmp_path_factory.mktemp("fashion")
    correct = 0
    for i in range(8):
        path = folder / f"{i}.png"
        Image.fromarray((images[i, 0].numpy() * 255).astype(np.uint8)).save(path)
        result = client.predict(handle_file(str(path)), api_name="/classify")
        assert len(result["confidences"]) == 3
        assert sum(c["confidence"] for c in result["confidences"]) <= 1.0 + 1e-6
        correct += result["label"] == names[int(labels[i])]
    assert correct >= 7, f"only {correct} of 8 test items classified correctly"


def test_the_detector_tab_finds_the_shapes(client, tmp_path_factory):
    from gradio_client import handle_file

    folder = tmp_path_factory.mktemp("scenes")
    found = 0
    for seed in range(3):
        scene = shapes.make_scene(20_000 + seed, image_size=64)
        path = folder / f"{seed}.png"
        Image.fromarray(scene.image).save(path)
        drawn, boxes = client.predict(handle_file(str(path)), api_name="/detect")
        assert Path(drawn).is_file()
        predicted = sorted(box["class"] for box in boxes)
        found += predicted == sorted(shapes.CLASSES[label] for label in scene.labels)
    assert found >= 2, "the detector should name the shapes of most scenes exactly"


MOBILENET = MIRROR / "data" / "torch" / "hub" / "checkpoints" / "mobilenet_v2-b0353104.pth"
needs_mobilenet = pytest.mark.skipif(not MOBILENET.is_file() and not (ROOT / "data" / "torch" / "hub" / "checkpoints"
                                                                     / MOBILENET.name).is_file(),
                                     reason="the ImageNet MobileNetV2 weights are neither cached nor in the mirror")


@needs_mobilenet
def test_the_imagenet_tab_names_real_photos(client, tmp_path_factory):
    from gradio_client import handle_file

    folder = tmp_path_factory.mktemp("photos")
    expected = {"chelsea": {"Egyptian cat", "tabby", "tiger cat"}, "coffee": {"espresso", "cup", "coffee mug"}}
    for name, photo in data.bundled_photos(tuple(expected)).items():
        path = folder / f"{name}.jpg"
        Image.fromarray(photo).save(path)
        result = client.predict(handle_file(str(path)), api_name="/imagenet")
        assert len(result["confidences"]) == 5
        assert result["label"] in expected[name], f"{name}: the app says {result['label']}"
        confidences = [c["confidence"] for c in result["confidences"]]
        assert confidences == sorted(confidences, reverse=True) and sum(confidences) <= 1 + 1e-6


def test_the_benchmark_tab_reports_both_runtimes(client):
    table, _plot = client.predict(api_name="/benchmark")
    runtimes = {row[0] for row in table["data"]}
    assert runtimes == {"PyTorch eager", "ONNX Runtime"}
    assert all(row[2] > 0 and row[3] >= row[2] for row in table["data"])


def test_the_app_parts_in_process(tmp_path):
    import gradio as gr

    from course_utils import app

    classifier = app.Classifier(onnx_dir=tmp_path / "onnx", threads=1)
    images, labels = data.tensor_dataset("fashion-mnist", train=False, normalize=False).tensors
    item = Image.fromarray((images[0, 0].numpy() * 255).astype(np.uint8))
    top = classifier.predict(item, top_k=3)
    assert list(top)[0] == data.class_names("fashion-mnist")[int(labels[0])] and len(top) == 3
    inverted = Image.fromarray(255 - (images[0, 0].numpy() * 255).astype(np.uint8))  # dark item on white
    assert list(classifier.predict(inverted))[0] == list(top)[0], "a light background is inverted like the data"
    assert classifier.predict(None) == {}
    rows = app.benchmark_rows(classifier, batch_sizes=(1, 4), repeats=2)
    assert [row[:2] for row in rows] == [["PyTorch eager", 1], ["ONNX Runtime", 1], ["PyTorch eager", 4], ["ONNX Runtime", 4]]
    assert app.benchmark_plot(rows).axes[0].get_xlabel() == "batch size"
    fashion, scenes = app.example_images(tmp_path / "examples", count=2)
    assert len(fashion) == len(scenes) == 2 and all(Path(p).is_file() for p in fashion + scenes)
    assert isinstance(app.build_app(classifier, None, examples_dir=tmp_path / "examples"), gr.Blocks)


@needs_mobilenet
def test_the_imagenet_classifier_in_process_equals_pytorch(tmp_path):
    import torch

    from course_utils import app

    imagenet = app.ImageNetClassifier(onnx_dir=tmp_path / "onnx", threads=1)
    photo = data.bundled_photos("coffee")["coffee"]
    batch = imagenet.preprocess(photo)
    assert batch.shape == (1, 3, 224, 224) and batch.dtype == np.float32
    with torch.inference_mode():
        expected = imagenet.model(torch.from_numpy(batch)).numpy()
    got = imagenet.session.run(None, {imagenet.session.get_inputs()[0].name: batch})[0]
    np.testing.assert_allclose(got, expected, atol=1e-3)
    top = imagenet.predict(photo)
    assert list(top)[0] == "espresso" and len(top) == 5 and imagenet.predict(None) == {}
    assert app.photo_examples(tmp_path / "photos")[0].endswith(".jpg")


def test_the_imagenet_tab_explains_missing_weights(tmp_path):
    import gradio as gr

    from course_utils import app

    classifier = app.Classifier(onnx_dir=tmp_path / "onnx", threads=1)
    demo = app.build_app(classifier, None, examples_dir=tmp_path / "examples", imagenet=None)
    assert isinstance(demo, gr.Blocks)
    assert "fetch weights/mobilenet_v2" in str(demo.config)
