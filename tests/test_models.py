import pytest
import torch

from course_utils.models import SmallCNN, conv_bn_relu


def test_small_cnn_shapes_and_embedding():
    model = SmallCNN().eval()
    x = torch.randn(3, 1, 28, 28)
    assert model.features(x).shape == (3, 32, 7, 7)
    assert model.embed(x).shape == (3, 128)
    assert model(x).shape == (3, 10)
    torch.testing.assert_close(model(x), model.head(model.embed(x)))


def test_small_cnn_options():
    model = SmallCNN(in_channels=3, num_classes=5, widths=(8, 16), hidden=32, image_size=32)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 5)
    assert sum(p.numel() for p in model.parameters()) > 0


def test_small_cnn_validates():
    with pytest.raises(ValueError, match="divisible by 4"):
        SmallCNN(image_size=30)
    with pytest.raises(ValueError, match=r"expected a batch N×C×H×W, got shape \(1, 28, 28\)"):
        SmallCNN().embed(torch.zeros(1, 28, 28))


def test_conv_bn_relu_keeps_size_and_has_no_conv_bias():
    block = conv_bn_relu(4, 6)
    assert block(torch.randn(1, 4, 9, 9)).shape == (1, 6, 9, 9)
    assert block[0].bias is None
