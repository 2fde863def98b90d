"""Chapter 08's Gradio app: classifier, ImageNet, detector and benchmark tabs, served from real models.

* classifier: chapter 02's Fashion-MNIST SmallCNN, exported to ONNX and run by ONNX Runtime (top-k with
  probabilities; upload a picture or pick one of the test images);
* ImageNet: torchvision's ImageNet-1k MobileNetV2 (real pretrained weights through the course's asset
  registry), exported to ONNX: a photo in, the top 5 of 1,000 classes out; the tab says why it is missing
  when the weights cannot be had;
* detector: chapter 03's YOLOv8n trained from scratch on generated shapes (boxes drawn on the image);
* benchmark: the latency harness of :mod:`course_utils.deploy`, PyTorch eager vs ONNX Runtime, as a table and a plot.

Start it from the command line (``python -m course_utils.app --port 7860``, ``--share`` for a public link on
Colab) or from a notebook (``build_app(...).launch()``). ``GRADIO_ANALYTICS_ENABLED=False`` keeps it offline.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from . import assets, data, deploy, models, shapes, train

CLASSIFIER_CHECKPOINT = "ch02_fashion_cnn"
DETECTOR_CHECKPOINT = "ch03_yolov8n_shapes"


def top_k_labels(session, batch: np.ndarray, labels, top_k: int) -> dict[str, float]:
    """The ``top_k`` classes of a one-image ``batch`` run through an ONNX Runtime ``session``, with softmax probabilities."""
    logits = session.run(None, {session.get_inputs()[0].name: batch})[0][0]
    probabilities = np.exp(logits - logits.max())
    probabilities /= probabilities.sum()
    best = np.argsort(probabilities)[::-1][:top_k]
    return {labels[i]: float(probabilities[i]) for i in best}


class Classifier:
    """Chapter 02's Fashion-MNIST CNN behind ONNX Runtime: ``predict(image) -> {label: probability}``."""

    def __init__(self, onnx_dir: str | Path | None = None, threads: int | None = None):
        self.model = models.SmallCNN()  # chapter 02 trained the default configuration
        train.load_checkpoint(CLASSIFIER_CHECKPOINT, self.model)  # checks the class and every tensor shape
        self.model.eval()
        self.labels = data.class_names("fashion-mnist")
        directory = Path(onnx_dir or tempfile.mkdtemp(prefix="course-app-"))
        self.onnx_path = deploy.export_onnx(self.model, torch.zeros(1, 1, 28, 28), directory / "fashion_cnn.onnx")
        self.session = deploy.onnx_session(self.onnx_path, threads=threads)

    @staticmethod
    def preprocess(image) -> np.ndarray:
        """Any picture → a 1×1×28×28 float32 batch normalised like Fashion-MNIST (light object, dark background)."""
        picture = Image.fromarray(image) if isinstance(image, np.ndarray) else image
        grey = np.asarray(picture.convert("L").resize((28, 28), Image.Resampling.BILINEAR), dtype=np.float32) / 255
        if grey[[0, -1], :].mean() + grey[:, [0, -1]].mean() > 1.0:  # a light background: invert like the data
            grey = 1.0 - grey
        return ((grey - data.FASHION_MNIST_MEAN) / data.FASHION_MNIST_STD)[None, None].astype(np.float32)

    def predict(self, image, top_k: int = 3) -> dict[str, float]:
        if image is None:
            return {}
        return top_k_labels(self.session, self.preprocess(image), self.labels, top_k)


class ImageNetClassifier:
    """torchvision's ImageNet MobileNetV2 behind ONNX Runtime: ``predict(photo) -> {class: probability}``.

    Raises :class:`course_utils.assets.AssetUnavailableError` when the weights cannot be had.
    """

    def __init__(self, onnx_dir: str | Path | None = None, threads: int | None = None):
        from torchvision.models import MobileNet_V2_Weights, mobilenet_v2

        weights = assets.torchvision_weights(MobileNet_V2_Weights.IMAGENET1K_V1)  # checksum-verified
        self.model = mobilenet_v2(weights=weights).eval()
        self.labels = weights.meta["categories"]
        self.transform = weights.transforms()  # resize 256, centre crop 224, ImageNet mean and std
        directory = Path(onnx_dir or tempfile.mkdtemp(prefix="course-app-"))
        self.onnx_path = deploy.export_onnx(self.model, torch.zeros(2, 3, 224, 224), directory / "mobilenet_v2.onnx")
        self.session = deploy.onnx_session(self.onnx_path, threads=threads)

    def preprocess(self, image) -> np.ndarray:
        """Any RGB photo → the 1×3×224×224 float32 batch the ImageNet weights expect."""
        picture = Image.fromarray(image) if isinstance(image, np.ndarray) else image
        return self.transform(picture.convert("RGB"))[None].numpy()

    def predict(self, image, top_k: int = 5) -> dict[str, float]:
        if image is None:
            return {}
        return top_k_labels(self.session, self.preprocess(image), self.labels, top_k)


class Detector:
    """Chapter 03's YOLOv8n (trained from scratch on generated shapes): ``predict(image) -> (drawn image, boxes)``."""

    def __init__(self):
        from . import yolo

        self.model = yolo.ShapesYOLOv8n(nc=len(shapes.CLASSES))
        train.load_checkpoint(DETECTOR_CHECKPOINT, self.model)
        self.yolo = yolo.wrap(self.model.eval(), shapes.CLASSES)

    def predict(self, image, confidence: float = 0.25):
        if image is None:
            return None, []
        picture = Image.fromarray(image) if isinstance(image, np.ndarray) else image
        result = self.yolo.predict(picture.convert("RGB"), imgsz=64, conf=confidence, device="cpu", verbose=False)[0]
        boxes = [{"class": result.names[int(c)], "confidence": round(float(p), 3), "xyxy": [round(float(v), 1) for v in b]}
                 for b, c, p in zip(result.boxes.xyxy, result.boxes.cls, result.boxes.conf)]
        drawn = Image.fromarray(result.plot(line_width=1, font_size=8)[..., ::-1])  # plot() returns BGR
        return drawn, boxes


def example_images(directory: str | Path, count: int = 6) -> tuple[list[str], list[str]]:
    """PNG files of Fashion-MNIST test items and of generated shape scenes, for the apps' example galleries."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    images, _ = data.tensor_dataset("fashion-mnist", train=False, normalize=False).tensors
    fashion = []
    for i in range(count):
        path = directory / f"fashion_{i}.png"
        Image.fromarray((images[i, 0].numpy() * 255).astype(np.uint8)).resize((112, 112), Image.Resampling.NEAREST).save(path)
        fashion.append(str(path))
    scenes = []
    for i in range(count):
        path = directory / f"shapes_{i}.png"
        Image.fromarray(shapes.make_scene(10_000 + i, image_size=64).image).save(path)
        scenes.append(str(path))
    return fashion, scenes


def benchmark_rows(classifier: Classifier, batch_sizes=(1, 8, 32), repeats: int = 20):
    """Median and p90 latency of PyTorch eager and ONNX Runtime for each batch size (rows for a table)."""
    rows = []
    for batch_size in batch_sizes:
        batch = torch.randn(batch_size, 1, 28, 28)
        feed = {classifier.session.get_inputs()[0].name: batch.numpy()}
        for runtime, fn in (("PyTorch eager", lambda batch=batch: classifier.model(batch)),
                            ("ONNX Runtime", lambda feed=feed: classifier.session.run(None, feed))):
            with torch.inference_mode():
                latency = deploy.measure_latency(fn, batch_size=batch_size, repeats=repeats)
            rows.append([runtime, batch_size, round(latency.median_ms, 3), round(latency.p90_ms, 3),
                         round(latency.throughput)])
    return rows


def benchmark_plot(rows):
    """Throughput against batch size; a ``Figure`` built without pyplot (thread-safe, leaves the backend alone)."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(5, 3))
    axis = figure.add_subplot()
    for runtime in dict.fromkeys(row[0] for row in rows):
        mine = [row for row in rows if row[0] == runtime]
        axis.plot([row[1] for row in mine], [row[4] for row in mine], marker="o", label=runtime)
    axis.set(xscale="log", yscale="log", xlabel="batch size", ylabel="images / s (median)",
             title=f"Throughput, {torch.get_num_threads()} threads")
    axis.legend()
    figure.tight_layout()
    return figure


def photo_examples(directory: str | Path) -> list[str]:
    """JPEG files of the photos bundled with installed packages, for the ImageNet tab's gallery."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, photo in data.bundled_photos().items():
        path = directory / f"photo_{name}.jpg"
        Image.fromarray(photo).save(path, quality=92)
        paths.append(str(path))
    return paths


def build_app(classifier: Classifier, detector: Detector | None = None, examples_dir: str | Path | None = None,
              imagenet: ImageNetClassifier | None = None):
    """The four-tab ``gradio.Blocks`` app; every button has its own API name for ``gradio_client``."""
    import gradio as gr

    examples_dir = Path(examples_dir or tempfile.mkdtemp(prefix="course-examples-"))
    fashion_examples, shape_examples = example_images(examples_dir)
    with gr.Blocks(title="Pixels to CLIP: deployment") as app:
        gr.Markdown("## Pixels to CLIP · chapter 08\nModels trained in this course, served by ONNX Runtime and Ultralytics.")
        with gr.Tab("Classifier"):
            with gr.Row():
                picture = gr.Image(type="pil", label="clothing item (Fashion-MNIST style)")
                top_k = gr.Label(num_top_classes=3, label="top 3")
            classify = gr.Button("Classify")
            classify.click(classifier.predict, inputs=picture, outputs=top_k, api_name="classify")
            gr.Examples(fashion_examples, inputs=picture)
        with gr.Tab("ImageNet"):
            if imagenet is None:
                gr.Markdown("The ImageNet MobileNetV2 weights cannot be had on this machine. Pre-fetch them on a "
                            "connected machine with `python -m course_utils.assets fetch weights/mobilenet_v2`.")
            else:
                with gr.Row():
                    photo = gr.Image(type="pil", label="any photo")
                    top_5 = gr.Label(num_top_classes=5, label="top 5 of 1,000 ImageNet classes")
                name_it = gr.Button("Classify")
                name_it.click(imagenet.predict, inputs=photo, outputs=top_5, api_name="imagenet")
                gr.Examples(photo_examples(examples_dir), inputs=photo)
        with gr.Tab("Detector"):
            if detector is None:
                gr.Markdown("The detector could not be loaded on this machine.")
            else:
                with gr.Row():
                    scene = gr.Image(type="pil", label="scene of shapes")
                    drawn = gr.Image(type="pil", label="detections")
                boxes = gr.JSON(label="boxes")
                detect = gr.Button("Detect")
                detect.click(detector.predict, inputs=scene, outputs=[drawn, boxes], api_name="detect")
                gr.Examples(shape_examples, inputs=scene)
        with gr.Tab("Benchmark"):
            table = gr.Dataframe(headers=["runtime", "batch", "median ms", "p90 ms", "images/s"], label="latency")
            plot = gr.Plot(label="throughput")
            run = gr.Button("Run the benchmark")

            def run_benchmark():
                rows = benchmark_rows(classifier)
                return rows, benchmark_plot(rows)

            run.click(run_benchmark, outputs=[table, plot], api_name="benchmark")
    return app


def connect(url: str):
    """A ``gradio_client.Client`` for the app at ``url``, quiet and sending no usage analytics.

    The ``analytics_enabled`` switch exists from gradio_client 1.9 on; older clients send no analytics.
    """
    import inspect

    from gradio_client import Client

    options = {"verbose": False}
    if "analytics_enabled" in inspect.signature(Client).parameters:
        options["analytics_enabled"] = False
    return Client(url, **options)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Serve the course's models with Gradio.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--share", action="store_true", help="a temporary public link (needs internet)")
    parser.add_argument("--no-detector", action="store_true")
    parser.add_argument("--no-imagenet", action="store_true", help="leave out the ImageNet MobileNetV2 tab")
    args = parser.parse_args(argv)
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    classifier = Classifier()
    detector = None if args.no_detector else Detector()
    imagenet = None if args.no_imagenet else assets.optional_weights(ImageNetClassifier, "the ImageNet tab")
    build_app(classifier, detector, imagenet=imagenet).launch(server_name=args.host, server_port=args.port,
                                                              share=args.share)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
