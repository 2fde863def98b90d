"""Tests for course_utils.mtcnn: the networks, each step of the cascade, and the whole detector.

Three levels, so that something meaningful runs everywhere:
- without weights or facenet-pytorch: shapes, every helper against a hand computation or torch's own
  operation, and the whole cascade end to end with random weights and zero thresholds;
- with facenet-pytorch (``pip install --no-deps facenet-pytorch==2.6.0``): each network gives its
  network's outputs for the same state dict;
- with the pretrained weights (the asset registry, i.e. the offline mirror in CI): strict loading,
  and the cascade finds facenet-pytorch's faces on the bundled photos (boxes IoU ≥ 0.99).
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torchvision import ops

from course_utils import assets, data, mtcnn

HAS_FACENET = importlib.util.find_spec("facenet_pytorch") is not None
needs_facenet = pytest.mark.skipif(not HAS_FACENET, reason="facenet-pytorch is not installed (pip install "
                                   "--no-deps facenet-pytorch==2.6.0): the reference comparison is skipped")
NETS = {"pnet": (mtcnn.PNet, 12), "rnet": (mtcnn.RNet, 24), "onet": (mtcnn.ONet, 48)}


@pytest.fixture(scope="module")
def weights():
    """The three pretrained state dicts, or a skip saying why they cannot be had."""
    try:
        paths = {name: assets.fetch(f"weights/mtcnn_{name}", quiet=True) for name in NETS}
    except assets.AssetUnavailableError as err:
        attempts = [attempt for tried in err.tried.values() for attempt in tried]
        pytest.skip(f"MTCNN weights not available here ({attempts[-1] if attempts else err}); "
                    f"set COURSE_ASSET_MIRROR or pre-fetch them: {err.prefetch}")
    return {name: torch.load(path, map_location="cpu", weights_only=True) for name, path in paths.items()}


@pytest.fixture(scope="module")
def detector(weights):
    model = mtcnn.MTCNN()
    for name, state in weights.items():
        getattr(model, name).load_state_dict(state, strict=True)
    return model


@pytest.fixture(scope="module")
def photos():
    """The bundled photos, made small enough for a fast test (the notebook compares them full size):
    the astronaut (512×512, one face), zidane.jpg at half size (640×360, two players and two harder
    faces) and the band of bus.jpg that holds the faces (810×300)."""
    from PIL import Image

    photos = data.bundled_photos(("astronaut", "zidane", "bus"))
    zidane = Image.fromarray(photos["zidane"])
    return {"astronaut": photos["astronaut"],
            "zidane (half size)": np.asarray(zidane.resize((zidane.width // 2, zidane.height // 2), Image.BILINEAR)),
            "bus (rows 300-599)": photos["bus"][300:600]}


@pytest.fixture(scope="module")
def found(detector, photos):
    return {name: detector.detect(photo) for name, photo in photos.items()}


# --- networks ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", NETS)
def test_state_dicts_load_strictly(weights, name):
    model_class, _ = NETS[name]
    result = model_class().load_state_dict(weights[name], strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    assert list(model_class().state_dict()) == list(weights[name])


def test_output_shapes():
    torch.manual_seed(0)
    probability, offsets = mtcnn.PNet()(torch.randn(2, 3, 30, 40))
    assert probability.shape == (2, 10, 15) and offsets.shape == (2, 4, 10, 15)  # one cell per 12×12 window
    assert mtcnn.PNet()(torch.randn(1, 3, 12, 12))[0].shape == (1, 1, 1)
    probability, offsets = mtcnn.RNet()(torch.randn(5, 3, 24, 24))
    assert probability.shape == (5,) and offsets.shape == (5, 4)
    probability, offsets, landmarks = mtcnn.ONet()(torch.randn(5, 3, 48, 48))
    assert probability.shape == (5,) and offsets.shape == (5, 4) and landmarks.shape == (5, 10)
    assert ((probability > 0) & (probability < 1)).all()


@needs_facenet
@pytest.mark.parametrize("name", NETS)
def test_each_network_equals_facenet_pytorch_on_random_input(name):
    from facenet_pytorch.models import mtcnn as reference

    model_class, size = NETS[name]
    torch.manual_seed(1)
    ours = model_class().eval()
    for parameter in ours.parameters():  # random, non-trivial PReLU slopes too
        parameter.data.normal_(0, 0.3)
    theirs = getattr(reference, model_class.__name__)(pretrained=False).eval()
    theirs.load_state_dict(ours.state_dict(), strict=True)
    images = torch.randn(4, 3, size + (18 if name == "pnet" else 0), size + (26 if name == "pnet" else 0))
    with torch.no_grad():
        our_out, their_out = ours(images), theirs(images)
    torch.testing.assert_close(our_out[0], their_out[-1][:, 1])  # face probability
    torch.testing.assert_close(our_out[1], their_out[0])  # box offsets
    if name == "onet":
        torch.testing.assert_close(our_out[2], their_out[1])  # landmarks


@needs_facenet
@pytest.mark.parametrize("name", NETS)
def test_pretrained_networks_equal_facenet_pytorch(weights, name):
    from facenet_pytorch.models import mtcnn as reference

    model_class, size = NETS[name]
    ours, theirs = model_class().eval(), getattr(reference, model_class.__name__)(pretrained=False).eval()
    ours.load_state_dict(weights[name])
    theirs.load_state_dict(weights[name])
    images = torch.rand(8, 3, size, size, generator=torch.Generator().manual_seed(2)) * 2 - 1
    with torch.no_grad():
        our_out, their_out = ours(images), theirs(images)
    assert (our_out[0] - their_out[-1][:, 1]).abs().max() == 0
    assert (our_out[1] - their_out[0]).abs().max() == 0


# --- the steps of the cascade ------------------------------------------------------------------------

def test_pyramid_scales():
    scales = mtcnn.pyramid_scales(512, 640)
    assert scales[0] == pytest.approx(12 / 20)  # a 20-px face fills the 12-px window
    np.testing.assert_allclose(np.diff(np.log(scales)), np.log(0.709))
    assert 512 * scales[-1] >= 12 > 512 * scales[-1] * 0.709  # the last level still holds one window
    assert len(scales) == 10
    assert len(mtcnn.pyramid_scales(512, 640, min_face_size=40)) == len(scales) - 2  # 2 × 0.709² ≈ 1
    assert mtcnn.pyramid_scales(10, 10) == []  # smaller than the smallest face
    for height, width, min_face_size, factor in [(0, 5, 20, 0.7), (5, 5, 20, 1.2), (5, 5, 0, 0.7)]:
        with pytest.raises(ValueError, match="0 < factor < 1"):
            mtcnn.pyramid_scales(height, width, min_face_size, factor)


def test_normalise():
    torch.testing.assert_close(mtcnn.normalise(torch.tensor([0.0, 127.5, 255.0])), torch.tensor([-0.99609375, 0, 0.99609375]))


def test_pnet_windows_map_cells_to_image_boxes():
    probability = torch.zeros(4, 5)
    probability[1, 3], probability[2, 0], probability[0, 0] = 0.9, 0.6, 0.59
    offsets = torch.arange(4 * 4 * 5, dtype=torch.float32).reshape(4, 4, 5)
    boxes, scores, box_offsets = mtcnn.pnet_windows(probability, offsets, scale=0.5, threshold=0.6)
    # cell (row 1, column 3) saw the window x 6..17, y 2..13 of the half-size image: ×2, 1-based, floored
    torch.testing.assert_close(boxes, torch.tensor([[14.0, 6, 36, 28], [2, 10, 24, 32]]))
    torch.testing.assert_close(scores, torch.tensor([0.9, 0.6]))
    torch.testing.assert_close(box_offsets, offsets[:, [1, 2], [3, 0]].T)


def test_apply_offsets_and_square():
    boxes = torch.tensor([[10.0, 20, 30, 60]])
    offsets = torch.tensor([[0.1, -0.1, 0.0, 0.5]])
    torch.testing.assert_close(mtcnn.apply_offsets(boxes, offsets, inclusive=False), torch.tensor([[12.0, 16, 30, 80]]))
    torch.testing.assert_close(mtcnn.apply_offsets(boxes, offsets), torch.tensor([[12.1, 15.9, 30, 80.5]]))
    squared = mtcnn.square(boxes)
    torch.testing.assert_close(squared, torch.tensor([[0.0, 20, 40, 60]]))  # same centre, side 40
    assert mtcnn.square(torch.zeros(0, 4)).shape == (0, 4)


def test_crop_windows_clip_to_the_image_and_flag_empty_crops():
    boxes = torch.tensor([[10.7, 5.2, 20.9, 15.0], [-5.0, -3.0, 8.0, 300.0], [120.0, 10, 140, 20], [-20.0, 0, -0.5, 9]])
    windows, valid = mtcnn.crop_windows(boxes, width=100, height=50)
    assert windows[:2].tolist() == [[9, 4, 20, 15], [0, 0, 8, 50]]  # 1-based truncation, clipped to the image
    assert valid.tolist() == [True, True, False, False]  # right of the image; left of it


def test_resize_crops_equals_area_interpolation_of_each_crop():
    generator = torch.Generator().manual_seed(3)
    image = torch.randint(0, 256, (3, 70, 90), generator=generator).float()
    windows = torch.tensor([[0, 0, 90, 70], [5, 7, 29, 31], [10, 20, 17, 26], [40, 3, 89, 69], [0, 0, 1, 1]])
    for size in (24, 48):
        batched = mtcnn.resize_crops(image, windows, size)
        assert batched.shape == (len(windows), 3, size, size) and batched.dtype == image.dtype
        for crop, (x0, y0, x1, y1) in zip(batched, windows.tolist()):
            expected = F.interpolate(image[None, :, y0:y1, x0:x1], size=(size, size), mode="area")[0]
            torch.testing.assert_close(crop, expected, atol=1e-3, rtol=1e-5)


def test_min_overlap_and_nms_min():
    boxes = torch.tensor([[0.0, 0, 99, 99], [10, 10, 29, 29], [90, 90, 189, 189], [300, 300, 309, 309]])
    overlap = mtcnn.min_overlap(boxes, boxes)
    torch.testing.assert_close(overlap.diagonal(), torch.ones(4))
    assert overlap[0, 1] == 1.0  # box 1 lies inside box 0
    assert overlap[0, 2] == pytest.approx(100 / 10_000) and overlap[0, 3] == 0
    scores = torch.tensor([0.9, 0.95, 0.8, 0.7])
    # IoU keeps the nested box (IoU 0.04); "Min" removes it, but keeps the corner-touching and far ones
    assert ops.nms(boxes, scores, 0.7).tolist() == [1, 0, 2, 3]
    assert mtcnn.nms_min(boxes, scores, 0.7).tolist() == [1, 2, 3]
    assert mtcnn.nms_min(torch.zeros(0, 4), torch.zeros(0), 0.7).tolist() == []


def test_as_image_tensor_accepts_arrays_pil_and_tensors():
    from PIL import Image

    array = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    for image in (array, Image.fromarray(array), torch.from_numpy(array)):
        out = mtcnn.as_image_tensor(image)
        assert out.shape == (3, 2, 3) and out.dtype == torch.float32 and out[2, 1, 2] == 17
    with pytest.raises(ValueError, match="H×W×3"):
        mtcnn.as_image_tensor(np.zeros((8, 8), np.uint8))


# --- the cascade -------------------------------------------------------------------------------------

def test_cascade_runs_every_stage_with_random_weights():
    torch.manual_seed(0)
    model = mtcnn.MTCNN(min_face_size=24, thresholds=(0.0, 0.0, 0.0))  # every window passes every stage
    image = np.random.default_rng(0).integers(0, 256, (60, 80, 3), dtype=np.uint8)
    faces = model.detect(image, keep_maps=True)
    counts = {name: len(boxes) for name, (boxes, scores) in faces.stages.items()}
    assert list(counts) == ["pnet_windows", "pnet_nms", "pnet", "rnet", "onet"]
    assert counts["pnet_windows"] == sum(m.numel() for m in faces.maps) > counts["pnet_nms"] == counts["pnet"]
    assert counts["onet"] == len(faces) > 0
    assert len(faces.scales) == len(faces.maps) == len(mtcnn.pyramid_scales(60, 80, 24))
    assert faces.boxes.shape == (len(faces), 4) and faces.landmarks.shape == (len(faces), 5, 2)
    squared = faces.stages["pnet"][0]
    torch.testing.assert_close(squared[:, 2] - squared[:, 0], squared[:, 3] - squared[:, 1])


def test_cascade_returns_empty_results_when_nothing_passes():
    model = mtcnn.MTCNN(thresholds=(1.1, 0.7, 0.7))  # no probability reaches 1.1
    faces = model.detect(np.zeros((40, 50, 3), np.uint8))
    assert len(faces) == 0 and faces.landmarks.shape == (0, 5, 2)
    assert all(len(boxes) == 0 for boxes, _ in faces.stages.values())
    tiny = model.detect(np.zeros((8, 8, 3), np.uint8))  # no pyramid level fits
    assert len(tiny) == 0 and tiny.scales == []
    with pytest.raises(ValueError, match="three probabilities"):
        mtcnn.MTCNN(thresholds=(0.5, 0.5))


def test_load_mtcnn_uses_the_registry(tmp_path, monkeypatch):
    torch.manual_seed(0)
    files = {}
    for name, (model_class, _) in NETS.items():
        files[f"weights/mtcnn_{name}"] = tmp_path / f"{name}.pt"
        torch.save(model_class().state_dict(), files[f"weights/mtcnn_{name}"])
    monkeypatch.setattr(assets, "fetch", lambda name, quiet=False: files[name])
    model = mtcnn.load_mtcnn(min_face_size=30)
    assert model.min_face_size == 30 and not model.training and model.device.type == "cpu"
    torch.testing.assert_close(model.onet.dense6_3.weight, torch.load(files["weights/mtcnn_onet"])["dense6_3.weight"])

    def unavailable(name, quiet=False):
        raise assets.AssetUnavailableError("no weights here", {name: ["mirror: missing"]}, "fetch it")

    monkeypatch.setattr(assets, "fetch", unavailable)
    with pytest.raises(assets.AssetUnavailableError):
        mtcnn.load_mtcnn()
    assert assets.optional_weights(mtcnn.load_mtcnn, "MTCNN") is None


def test_finds_the_faces_in_the_photos(found):
    assert {name: len(faces) for name, faces in found.items()} == {
        "astronaut": 1, "zidane (half size)": 4, "bus (rows 300-599)": 2}
    faces = found["astronaut"]
    assert len(faces) == 1 and faces.scores[0] > 0.99
    x1, y1, x2, y2 = faces.boxes[0].tolist()
    assert 150 < x1 < x2 < 300 and 40 < y1 < y2 < 200  # Eileen Collins' face, upper middle
    eyes, nose = faces.landmarks[0, :2], faces.landmarks[0, 2]
    assert (eyes[:, 1] < nose[1]).all() and eyes[0, 0] < nose[0] < eyes[1, 0]


@needs_facenet
def test_cascade_matches_facenet_pytorch_on_photos(photos, found):
    from facenet_pytorch import MTCNN as ReferenceMTCNN

    reference = ReferenceMTCNN(keep_all=True, select_largest=False, min_face_size=20,
                               thresholds=[0.6, 0.7, 0.7], factor=0.709)
    for name, photo in photos.items():
        faces = found[name]
        boxes, probabilities, points = reference.detect(photo, landmarks=True)
        assert boxes is not None and len(faces) == len(boxes), name
        iou = ops.box_iou(faces.boxes, torch.as_tensor(boxes.astype(np.float32)))
        match = iou.argmax(dim=1)
        assert sorted(match.tolist()) == list(range(len(boxes))), f"{name}: not one-to-one"
        assert iou.max(dim=1).values.min() >= 0.99, name
        landmark_error = (faces.landmarks - torch.as_tensor(points.astype(np.float32))[match]).abs().max()
        assert landmark_error < 2.0, f"{name}: landmarks {landmark_error:.2f} px away"
        torch.testing.assert_close(faces.scores, torch.as_tensor(probabilities.astype(np.float32))[match],
                                   atol=1e-3, rtol=0)
