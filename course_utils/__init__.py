"""Helpers for the open computer-vision course (pixels → CLIP with PyTorch).

One module per concern:
  config   – run mode (``COURSE_FAST``), device, seeding, paths, the setup cell's report
  assets   – the download registry, cache, offline mirror and ``python -m course_utils.assets``
  data     – MNIST / Fashion-MNIST through the asset layer, subsets and loaders; real photos from packages
  shapes   – a deterministic generated "shapes" dataset (boxes, masks, captions, YOLO export)
  train    – the training/evaluation loop and ``train_or_load`` checkpoints
  viz      – image grids, training curves, boxes, masks, confusion matrices
  checks   – the exercise-checker framework (chapter checkers live in ``course_utils.exercises``)
  results  – chapter results files and the README table
  install  – install only the missing packages (Colab)
  models   – chapter 02's SmallCNN and conv_bn_relu, reused by later chapters
  yolo     – Ultralytics helpers (quiet logging, training arguments, history) for chapters 03–04
  vit      – the from-scratch Vision Transformer (timm-compatible weights), for chapters 06–07
  mtcnn    – the MTCNN face detector (P/R/O-Net and the cascade, facenet-pytorch weights), chapter 03
  app      – chapter 08's Gradio app (Fashion-MNIST CNN, ImageNet MobileNetV2, YOLOv8n, benchmark)
"""

from .config import checkpoints_dir, data_dir, get_device, is_fast, mode, pick, repo_root, seed_everything
from .config import setup as _setup_environment

__version__ = "0.1.0"
COLAB_REPO = "open-cv-course/pixels-to-clip"


def setup(chapter: str, seed: int = 0, extra_packages=(), figure_format: str = "png") -> dict:
    """The first call of every notebook: caches, seeds, figure format, and the mode/device/versions report."""
    from .assets import configure_library_caches

    configure_library_caches()
    return _setup_environment(chapter, seed=seed, extra_packages=extra_packages, figure_format=figure_format)


__all__ = [
    "COLAB_REPO",
    "__version__",
    "checkpoints_dir",
    "data_dir",
    "get_device",
    "is_fast",
    "mode",
    "pick",
    "repo_root",
    "seed_everything",
    "setup",
]
