"""Tests for course_utils.shapes: every label must agree with the pixels it describes."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from course_utils import shapes
from course_utils.shapes import CLASSES, COLORS, ShapesDataset, collate_detection, export_yolo, make_scene

SEEDS = range(60)


def _scenes(**kwargs):
    return [make_scene(seed, **kwargs) for seed in SEEDS]


def _tight_box(mask: np.ndarray) -> list[float]:
    ys, xs = np.nonzero(mask)
    return [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]


def _centre(box) -> np.ndarray:
    return np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])


def _phrase(scene, i: int) -> str:
    return f"a {scene.sizes[i]} {scene.colors[i]} {CLASSES[scene.labels[i]]}"


def _fill_polygon(points: np.ndarray, height: int, width: int) -> np.ndarray:
    """Even-odd test of every pixel centre against a polygon given in pixel units."""
    py, px = np.mgrid[0:height, 0:width] + 0.5
    inside = np.zeros((height, width), dtype=bool)
    for (x0, y0), (x1, y1) in zip(points, np.roll(points, -1, axis=0)):
        crosses = (y0 > py) != (y1 > py)
        x_at = x0 + (py - y0) * (x1 - x0) / (y1 - y0 if y1 != y0 else 1.0)
        inside ^= crosses & (px < x_at)
    return inside


def _assert_scenes_equal(a, b) -> None:
    for field in ("image", "boxes", "labels", "instance_masks", "semantic_mask"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    assert (a.colors, a.sizes, a.caption) == (b.colors, b.sizes, b.caption)


# ------------------------------------------------------------------------------------ scenes
def test_same_seed_gives_identical_scene_and_generator_matches_seed():
    _assert_scenes_equal(make_scene(11), make_scene(11))
    _assert_scenes_equal(make_scene(11), make_scene(np.random.default_rng(11)))


def test_different_seeds_give_different_images():
    images = [make_scene(seed).image for seed in range(5)]
    for i in range(len(images)):
        for j in range(i + 1, len(images)):
            assert not np.array_equal(images[i], images[j])


def test_scene_arrays_have_documented_shapes_and_dtypes():
    scene = make_scene(3, image_size=48, n_shapes=(2, 2))
    n = len(scene.labels)
    assert n == 2 == len(scene)
    assert scene.image.shape == (48, 48, 3) and scene.image.dtype == np.uint8
    assert scene.boxes.shape == (n, 4) and scene.boxes.dtype == np.float32
    assert scene.labels.dtype == np.int64
    assert scene.instance_masks.shape == (n, 48, 48) and scene.instance_masks.dtype == bool
    assert scene.semantic_mask.shape == (48, 48) and scene.semantic_mask.dtype == np.int64
    assert len(scene.colors) == len(scene.sizes) == n


def test_shape_count_respects_range():
    counts = {len(scene) for scene in _scenes(n_shapes=(2, 4))}
    assert counts <= {2, 3, 4}
    assert len(counts) > 1, "the count should vary within the range"


def test_boxes_are_tight_around_nonempty_disjoint_instance_masks():
    for scene in _scenes():
        assert (scene.instance_masks.sum(axis=0) <= 1).all(), "visible masks must not overlap"
        for box, mask in zip(scene.boxes, scene.instance_masks):
            assert mask.any()
            np.testing.assert_array_equal(box, _tight_box(mask))


def test_semantic_mask_and_pixels_agree_with_instances():
    for scene in _scenes(background="plain"):
        expected = np.zeros_like(scene.semantic_mask)
        for label, mask, color in zip(scene.labels, scene.instance_masks, scene.colors):
            expected[mask] = label + 1
            assert (scene.image[mask] == COLORS[color]).all()
        np.testing.assert_array_equal(scene.semantic_mask, expected)
        background = scene.image[expected == 0]
        assert (background == background[:, :1]).all(), "background must be grey (R == G == B)"


def test_every_instance_keeps_min_visible_fraction(monkeypatch):
    full_masks = []
    original = shapes._visible_masks

    def recording(masks):
        full_masks.append(np.stack(masks))
        return original(masks)

    monkeypatch.setattr(shapes, "_visible_masks", recording)
    for seed in SEEDS:
        scene = make_scene(seed, n_shapes=(3, 5), min_visible_fraction=0.6)
        full = full_masks[-1]
        for i, visible in enumerate(scene.instance_masks):
            on_top = full[i + 1:].any(axis=0)
            np.testing.assert_array_equal(visible, full[i] & ~on_top)
            assert visible.sum() >= 0.6 * full[i].sum()


def test_sizes_and_colors_are_valid_names():
    for scene in _scenes(colors=["red", "blue"], classes=["square"]):
        assert set(scene.sizes) <= {"small", "large"}
        assert set(scene.colors) <= {"red", "blue"}
        assert set(scene.labels.tolist()) == {CLASSES.index("square")}


def test_large_shapes_are_bigger_than_small_ones():
    areas = {"small": [], "large": []}
    for scene in _scenes(n_shapes=1):
        areas[scene.sizes[0]].append(scene.instance_masks[0].sum())
    assert areas["small"] and areas["large"]
    # Same class can differ by shape, but even a large triangle (2r^2) beats a small square (4r^2).
    assert max(areas["small"]) < min(areas["large"])


def test_colors_are_distinct_in_rgb():
    assert {"red", "green", "blue", "yellow"} <= set(COLORS)
    values = np.array(list(COLORS.values()), dtype=int)
    distances = np.abs(values[:, None] - values[None]).sum(-1)
    assert distances[~np.eye(len(values), dtype=bool)].min() > 100


# ------------------------------------------------------------------------------------ captions
def test_caption_mentions_every_shape():
    for scene in _scenes(n_shapes=(1, 4)):
        for i in range(len(scene)):
            assert _phrase(scene, i) in scene.caption


def test_two_shape_relation_matches_box_centres():
    seen = set()
    margin = shapes.RELATION_MARGIN * 64
    for seed in range(150):
        scene = make_scene(seed, n_shapes=2)
        first, second = _phrase(scene, 0), _phrase(scene, 1)
        match = re.fullmatch(r"(.+) (above|to the left of) (.+)", scene.caption)
        if match is None:
            assert scene.caption == f"{first} and {second}"
            dx, dy = np.abs(_centre(scene.boxes[1]) - _centre(scene.boxes[0]))
            assert max(dx, dy) < margin, "an 'and' caption means neither offset is clear"
            continue
        subject, relation, obj = match.groups()
        assert {subject, obj} == {first, second}
        axis = 1 if relation == "above" else 0
        # Two identical phrases ("a small red circle ... a small red circle") fit either reading.
        readings = [i for i in (0, 1) if (_phrase(scene, i), _phrase(scene, 1 - i)) == (subject, obj)]
        offsets = [(_centre(scene.boxes[1 - i]) - _centre(scene.boxes[i]))[axis] for i in readings]
        assert max(offsets) >= margin, f"{scene.caption!r}: subject not clearly {relation} the object"
        seen.add(relation)
    assert seen == {"above", "to the left of"}


# ------------------------------------------------------------------------------------ dataset
def test_dataset_items_are_reproducible_and_seeds_do_not_overlap():
    a, b = ShapesDataset(4, seed=0), ShapesDataset(4, seed=1)
    image, target = a[2]
    image_again, target_again = ShapesDataset(4, seed=0)[2]
    assert torch.equal(image, image_again) and torch.equal(target["boxes"], target_again["boxes"])
    assert not torch.equal(a[1][0], b[0][0]), "seed=1 must not be a shifted copy of seed=0"
    assert torch.equal(a[-1][0], a[3][0])
    with pytest.raises(IndexError, match=r"index must be in \[-4, 4\), got 4"):
        a[4]


@pytest.mark.parametrize("task", ["detection", "instance"])
def test_detection_and_instance_targets(task):
    dataset = ShapesDataset(3, image_size=40, seed=5, task=task)
    scene = dataset.scene(1)
    image, target = dataset[1]
    assert image.shape == (3, 40, 40) and image.dtype == torch.float32
    assert 0.0 <= image.min() and image.max() <= 1.0
    n = len(scene)
    assert target["boxes"].shape == (n, 4) and target["boxes"].dtype == torch.float32
    assert target["labels"].dtype == torch.int64
    assert torch.equal(target["labels"], torch.from_numpy(scene.labels) + 1), "0 is background"
    if task == "instance":
        assert target["masks"].shape == (n, 40, 40) and target["masks"].dtype == torch.uint8
        assert torch.equal(target["masks"].bool(), torch.from_numpy(scene.instance_masks))
    else:
        assert "masks" not in target


def test_semantic_caption_and_classification_targets():
    _, target = ShapesDataset(2, task="semantic")[0]
    assert target.shape == (64, 64) and target.dtype == torch.int64
    assert set(target.unique().tolist()) <= {0, 1, 2, 3}

    caption_ds = ShapesDataset(2, task="caption")
    assert caption_ds[1][1] == caption_ds.scene(1).caption

    classification = ShapesDataset(20, task="classification")
    for i in range(len(classification)):
        label = classification[i][1]
        assert isinstance(label, int) and 0 <= label < len(CLASSES)
        assert len(classification.scene(i)) == 1
        assert classification.scene(i).labels[0] == label


def test_transform_is_applied_to_image():
    dataset = ShapesDataset(1, task="caption", transform=lambda img: img * 0)
    assert dataset[0][0].abs().sum() == 0


def test_collate_detection_with_dataloader():
    dataset = ShapesDataset(5, image_size=32, task="instance")
    loader = torch.utils.data.DataLoader(dataset, batch_size=3, collate_fn=collate_detection)
    images, targets = next(iter(loader))
    assert images.shape == (3, 3, 32, 32)
    assert isinstance(targets, list) and len(targets) == 3
    assert torch.equal(targets[2]["boxes"], dataset[2][1]["boxes"])
    with pytest.raises(ValueError, match="at least one"):
        collate_detection([])


# ------------------------------------------------------------------------------------ YOLO export
def _read_yaml(path: Path) -> dict:
    try:
        import yaml
    except ImportError:  # tiny fallback for exactly the layout export_yolo writes
        data, names = {}, {}
        for line in path.read_text().splitlines():
            if not line.strip() or line.startswith("#"):
                continue
            key, _, value = line.strip().partition(": ")
            if line.startswith("  "):
                names[int(key)] = value
            elif key.rstrip(":") == "names":
                data["names"] = names
            else:
                data[key] = value.strip('"')
        return data
    return yaml.safe_load(path.read_text())


def test_export_yolo_boxes(tmp_path):
    yaml_path = export_yolo(tmp_path / "ds", n_train=4, n_val=2, image_size=48, seed=3)
    root = tmp_path / "ds"
    assert yaml_path == root.resolve() / "data.yaml"
    data = _read_yaml(yaml_path)
    assert Path(data["path"]) == root.resolve() and Path(data["path"]).is_absolute()
    assert data["train"] == "images/train" and data["val"] == "images/val"
    assert data["names"] == {0: "circle", 1: "square", 2: "triangle"}

    reference = ShapesDataset(4, image_size=48, seed=3)
    for split, count in (("train", 4), ("val", 2)):
        images = sorted((root / "images" / split).glob("*.png"))
        labels = sorted((root / "labels" / split).glob("*.txt"))
        assert len(images) == len(labels) == count
        assert [p.stem for p in images] == [p.stem for p in labels]
    for i, label_file in enumerate(sorted((root / "labels" / "train").glob("*.txt"))):
        rows = np.loadtxt(label_file, ndmin=2)
        scene = reference.scene(i)
        assert rows.shape == (len(scene), 5)
        assert ((rows[:, 1:] >= 0) & (rows[:, 1:] <= 1)).all()
        np.testing.assert_array_equal(rows[:, 0], scene.labels)
        cx, cy, w, h = rows[:, 1:].T * 48
        np.testing.assert_allclose(np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], 1),
                                   scene.boxes, atol=1e-3)
    val_image = np.array(Image.open(root / "images" / "val" / "000000.png"))
    assert not np.array_equal(val_image, reference.scene(0).image), "val must differ from train"


def test_export_yolo_segments_and_reexport_is_clean(tmp_path):
    root = tmp_path / "seg"
    export_yolo(root, n_train=5, n_val=1, seed=1, segments=True)
    reference = ShapesDataset(5, seed=1)
    for i, label_file in enumerate(sorted((root / "labels" / "train").glob("*.txt"))):
        scene = reference.scene(i)
        lines = label_file.read_text().splitlines()
        assert len(lines) == len(scene)
        for line, label, box, mask in zip(lines, scene.labels, scene.boxes, scene.instance_masks):
            cls, *coords = line.split()
            assert int(cls) == label and len(coords) % 2 == 0 and len(coords) >= 6
            points = np.array(coords, dtype=float).reshape(-1, 2)
            assert ((points >= 0) & (points <= 1)).all()
            filled = _fill_polygon(points * 64, 64, 64)
            assert filled[mask].mean() >= 0.5, "polygon must cover the (largest part of the) mask"
            outside_box = np.ones_like(mask)
            x1, y1, x2, y2 = box.astype(int)
            outside_box[y1:y2, x1:x2] = False
            assert not filled[outside_box].any()

    (root / "labels" / "train.cache").write_text("stale")
    export_yolo(root, n_train=2, n_val=1, seed=1)
    assert len(list((root / "images" / "train").iterdir())) == 2
    assert len(list((root / "labels" / "train").iterdir())) == 2
    assert not (root / "labels" / "train.cache").exists()
    assert len((root / "labels" / "train" / "000000.txt").read_text().split("\n")[0].split()) == 5


@pytest.mark.parametrize(
    "mask_rows, expected_rows",
    [
        # L shape: the outline reproduces the pixels exactly.
        (["##..", "##..", "####"], None),
        # Ring: the hole is filled because YOLO has one polygon per object.
        (["###", "#.#", "###"], ["###", "###", "###"]),
        # Two blobs: only the larger one is kept.
        (["##..#", "##...", "....."], ["##...", "##...", "....."]),
        # Pixels touching only at a corner are separate blobs.
        (["##..", "##..", "..#."], ["##..", "##..", "...."]),
    ],
)
def test_mask_outline(mask_rows, expected_rows):
    mask = np.array([[c == "#" for c in row] for row in mask_rows])
    expected = mask if expected_rows is None else np.array([[c == "#" for c in r] for r in expected_rows])
    outline = np.array(shapes._mask_outline(mask), dtype=float)
    np.testing.assert_array_equal(_fill_polygon(outline, *mask.shape), expected)


# ------------------------------------------------------------------------------------ validation
@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"image_size": 8}, ValueError, "image_size must be an int >= 32, got 8"),
        ({"image_size": 64.0}, TypeError, r"image_size must be an int >= 32, got 64\.0 \(float\)"),
        ({"n_shapes": (3, 1)}, ValueError, r"n_shapes must be .*1 <= min <= max.*got \(3, 1\)"),
        ({"n_shapes": "two"}, TypeError, "n_shapes must be an int or a"),
        ({"background": "stripes"}, ValueError,
         r"background must be one of \['noise', 'plain'\], got 'stripes'"),
        ({"min_visible_fraction": 1.5}, ValueError,
         r"min_visible_fraction must be a number in \[0, 1\], got 1.5"),
        ({"colors": ["purple"]}, ValueError, r"colors must be a non-empty subset of .*got \['purple'\]"),
        ({"classes": "circle"}, TypeError, "classes must be a sequence of names"),
    ],
)
def test_make_scene_rejects_bad_arguments(kwargs, error, message):
    with pytest.raises(error, match=message):
        make_scene(0, **kwargs)


def test_bad_seed_and_impossible_scene_raise():
    with pytest.raises(TypeError, match="rng_or_seed must be an int seed >= 0 or a numpy Generator, got 'a'"):
        make_scene("a")
    with pytest.raises(ValueError, match="rng_or_seed must be an int >= 0, got -1"):
        make_scene(-1)
    with pytest.raises(RuntimeError, match="could only place"):
        make_scene(0, image_size=32, n_shapes=20, min_visible_fraction=1.0, max_attempts=5)


def test_dataset_and_export_reject_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match=r"task must be one of \[.*'caption'\], got 'depth'"):
        ShapesDataset(2, task="depth")
    with pytest.raises(ValueError, match="n_images must be an int >= 1, got 0"):
        ShapesDataset(0)
    with pytest.raises(ValueError, match=r"needs one shape per image \(n_shapes=1\), got n_shapes=\(1, 3\)"):
        ShapesDataset(2, task="classification", n_shapes=(1, 3))
    with pytest.raises(TypeError, match="transform must be callable"):
        ShapesDataset(2, transform="resize")
    with pytest.raises(TypeError, match="unexpected keyword argument 'colour'"):
        ShapesDataset(2, colour="red")
    with pytest.raises(ValueError, match="n_val must be an int >= 1, got 0"):
        export_yolo(tmp_path / "bad", n_train=1, n_val=0)
    with pytest.raises(TypeError, match="segments must be a bool"):
        export_yolo(tmp_path / "bad", n_train=1, n_val=1, segments="yes")
    with pytest.raises(ValueError, match="image_size must be an int >= 32, got 16"):
        export_yolo(tmp_path / "bad", n_train=1, n_val=1, image_size=16)
    assert not (tmp_path / "bad").exists(), "validation must fail before anything is written"
