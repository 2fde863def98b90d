import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from course_utils import data

MIRROR = Path(os.environ.get("COURSE_ASSET_MIRROR") or Path(__file__).resolve().parents[2] / "shared" / "assets")
needs_mirror = pytest.mark.skipif(not (MIRROR / "data" / "MNIST").is_dir(),
                                  reason=f"no offline mirror at {MIRROR} (set COURSE_ASSET_MIRROR)")


@pytest.fixture
def mirrored_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_DATA", str(tmp_path))
    monkeypatch.setenv("COURSE_ASSET_MIRROR", str(MIRROR))
    return tmp_path


@needs_mirror
@pytest.mark.parametrize("name, mean, std, n_train", [
    ("mnist", data.MNIST_MEAN, data.MNIST_STD, 60_000),
    ("fashion-mnist", data.FASHION_MNIST_MEAN, data.FASHION_MNIST_STD, 60_000),
])
def test_datasets_come_through_the_asset_layer_with_correct_statistics(mirrored_cache, name, mean, std, n_train):
    raw = data.load_dataset(name, train=True, transform="pil")
    assert len(raw) == n_train
    assert isinstance(raw[0][0], Image.Image)
    assert (mirrored_cache / raw.__class__.__name__ / "raw").is_dir()  # unpacked in our cache
    pixels = raw.data.float() / 255
    assert abs(pixels.mean().item() - mean) < 1e-4 and abs(pixels.std().item() - std) < 1e-4
    test = data.load_dataset(name, train=False)
    image, label = test[0]
    assert image.shape == (1, 28, 28) and image.dtype == torch.float32 and 0 <= label < 10
    assert image.min() < -0.3  # normalised: background pixels are below zero


@needs_mirror
def test_tensor_dataset_equals_the_per_item_transform(mirrored_cache):
    fast = data.tensor_dataset("mnist", train=False)
    slow = data.load_dataset("mnist", train=False)
    assert fast.tensors[0].shape == (10_000, 1, 28, 28) and fast.tensors[1].dtype == torch.int64
    for index in (0, 1234, 9999):
        torch.testing.assert_close(fast[index][0], slow[index][0])
        assert fast[index][1] == slow[index][1]
    raw = data.tensor_dataset("mnist", train=False, normalize=False)
    assert raw.tensors[0].min() == 0.0 and raw.tensors[0].max() == 1.0


def test_unknown_dataset_is_rejected():
    with pytest.raises(ValueError, match=r"dataset must be one of \['fashion-mnist', 'mnist'\], got 'cifar'"):
        data.load_dataset("cifar")


def test_transform_without_normalisation_stays_in_unit_range():
    image = Image.fromarray((torch.arange(28 * 28).reshape(28, 28) % 256).byte().numpy())
    tensor = data.default_transform("mnist", normalize=False)(image)
    assert tensor.shape == (1, 28, 28) and tensor.max() == 1.0 and tensor.min() == 0.0


def test_class_names():
    assert data.class_names("mnist")[3] == "3"
    assert data.class_names("fashion-mnist")[9] == "Ankle boot"


def test_subset_is_reproducible_and_sized():
    dataset = torch.utils.data.TensorDataset(torch.arange(100))
    first, second = data.subset(dataset, 10, seed=3), data.subset(dataset, 10, seed=3)
    assert len(first) == 10 and first.indices == second.indices
    assert data.subset(dataset, 10, seed=4).indices != first.indices
    assert data.subset(dataset, None) is dataset and data.subset(dataset, 1000) is dataset
    with pytest.raises(ValueError, match="positive int or None, got 0"):
        data.subset(dataset, 0)


def test_make_loader_shuffles_reproducibly():
    dataset = torch.utils.data.TensorDataset(torch.arange(20))
    order = [batch[0].tolist() for batch in data.make_loader(dataset, batch_size=5, shuffle=True, seed=1)]
    again = [batch[0].tolist() for batch in data.make_loader(dataset, batch_size=5, shuffle=True, seed=1)]
    assert order == again and sorted(i for batch in order for i in batch) == list(range(20)) and order[0] != [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        data.make_loader(dataset, batch_size=0)


def test_bundled_photos_are_real_rgb_photos_without_a_download():
    photos = data.bundled_photos()
    assert tuple(photos) == data.BUNDLED_PHOTOS
    for name, photo in photos.items():
        assert photo.dtype == np.uint8 and photo.ndim == 3 and photo.shape[2] == 3, name
        assert min(photo.shape[:2]) >= 300 and photo.std() > 20, f"{name} is not a real photo"
    assert data.bundled_photos("bus")["bus"].shape == (1080, 810, 3)
    with pytest.raises(KeyError, match="unknown photo"):
        data.bundled_photos(("astronaut", "moon"))
