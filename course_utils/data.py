"""MNIST and Fashion-MNIST through the asset layer, plus the small data-loading helpers chapters share.

The files are fetched (cache → mirror → network, checksum-verified) by :mod:`course_utils.assets`
and then handed to ``torchvision.datasets``, which only unpacks them: it never downloads anything.
"""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader, Dataset, Subset, TensorDataset
from torchvision import datasets
from torchvision.transforms import v2

from . import assets
from .config import data_dir

MNIST_CLASSES = tuple(str(d) for d in range(10))
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
# Mean and std of the training pixels in [0, 1]: computed in chapter 00 and checked by the tests.
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081
FASHION_MNIST_MEAN, FASHION_MNIST_STD = 0.2860, 0.3530

_DATASETS = {
    "mnist": (datasets.MNIST, MNIST_CLASSES, MNIST_MEAN, MNIST_STD),
    "fashion-mnist": (datasets.FashionMNIST, FASHION_MNIST_CLASSES, FASHION_MNIST_MEAN, FASHION_MNIST_STD),
}


def default_transform(name: str, normalize: bool = True) -> v2.Compose:
    """PIL image → float32 tensor 1×28×28 in [0, 1], then standardised with the training statistics."""
    _, _, mean, std = _spec(name)
    steps = [v2.ToImage(), v2.ToDtype(torch.float32, scale=True)]
    if normalize:
        steps.append(v2.Normalize([mean], [std]))
    return v2.Compose(steps)


def _spec(name: str):
    if name not in _DATASETS:
        raise ValueError(f"dataset must be one of {sorted(_DATASETS)}, got {name!r}")
    return _DATASETS[name]


def load_dataset(name: str, train: bool = True, transform=None) -> Dataset:
    """``"mnist"`` or ``"fashion-mnist"`` as a torchvision dataset, fetched through the asset layer.

    ``transform=None`` gives the :func:`default_transform`; pass ``"pil"`` to get raw PIL images.
    """
    dataset_class, _, _, _ = _spec(name)
    assets.fetch_all(name)
    if transform is None:
        transform = default_transform(name)
    elif transform == "pil":
        transform = None
    # download=True only unpacks here: the verified archives are already in place, so torchvision
    # finds them (md5 ok) and skips the network.
    return dataset_class(root=str(data_dir()), train=train, transform=transform, download=True)


def tensor_dataset(name: str, train: bool = True, normalize: bool = True) -> TensorDataset:
    """The whole split as in-memory tensors: images N×1×28×28 float32 (standardised), labels N.

    Converting once is ~100× faster per epoch than decoding a PIL image per item, which matters on
    a laptop CPU; use :func:`load_dataset` with a transform when you need per-item augmentation.
    """
    raw = load_dataset(name, train=train, transform="pil")
    images = raw.data.unsqueeze(1).float().div(255)
    if normalize:
        _, _, mean, std = _spec(name)
        images = (images - mean) / std
    return TensorDataset(images, raw.targets.clone())


def class_names(name: str) -> tuple[str, ...]:
    return _spec(name)[1]


def subset(dataset: Dataset, n: int | None, seed: int = 0) -> Dataset:
    """A reproducible random subset of ``n`` items (the whole dataset when ``n`` is None or too big)."""
    if n is None or n >= len(dataset):
        return dataset
    if not isinstance(n, int) or n <= 0:
        raise ValueError(f"n must be a positive int or None, got {n!r}")
    generator = torch.Generator().manual_seed(seed)
    indices = torch.randperm(len(dataset), generator=generator)[:n].tolist()
    return Subset(dataset, indices)


def make_loader(dataset: Dataset, batch_size: int = 128, shuffle: bool = False, seed: int = 0,
                num_workers: int = 0) -> DataLoader:
    """A DataLoader whose shuffling is reproducible (its own seeded generator).

    ``num_workers=0`` by default: on a 2-core laptop and in notebooks, worker processes cost more
    than they save for 28×28 images.
    """
    if not isinstance(batch_size, int) or batch_size <= 0:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, generator=generator,
                      num_workers=num_workers, pin_memory=torch.cuda.is_available())


# --- real photos that ship inside installed packages (no download) -----------------------------------

BUNDLED_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "bus", "zidane")


def bundled_photos(names=BUNDLED_PHOTOS) -> dict:
    """Real RGB photos (H×W×3 uint8 NumPy arrays) that come with installed packages, by name.

    ``astronaut``, ``chelsea``, ``coffee`` and ``rocket`` are scikit-image's ``skimage.data`` images;
    ``bus`` and ``zidane`` are Ultralytics' two example photos (``ultralytics.utils.ASSETS``). None of
    them needs the network, so pretrained models can be shown on real photos offline.
    """
    import numpy as np
    from PIL import Image

    if isinstance(names, str):
        names = (names,)
    photos = {}
    for name in names:
        if name in ("bus", "zidane"):
            from ultralytics.utils import ASSETS

            photos[name] = np.array(Image.open(ASSETS / f"{name}.jpg").convert("RGB"))  # writable
        elif name in BUNDLED_PHOTOS:
            import skimage.data

            photos[name] = np.ascontiguousarray(getattr(skimage.data, name)()[..., :3])
        else:
            raise KeyError(f"unknown photo {name!r}; the bundled photos are {BUNDLED_PHOTOS}")
    return photos
