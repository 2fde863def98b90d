"""course_utils.vit: the from-scratch ViT loads timm's weights and reproduces timm's logits."""

import pytest
import timm
import torch

from course_utils.vit import MultiHeadSelfAttention, PatchEmbedding, VisionTransformer

TIMM_CONFIGS = {  # timm name → our constructor arguments
    "vit_tiny_patch16_224": {"dim": 192, "depth": 12, "num_heads": 3},
    "vit_small_patch16_224": {"dim": 384, "depth": 12, "num_heads": 6},
    "vit_base_patch16_224": {"dim": 768, "depth": 12, "num_heads": 12},
}


@pytest.mark.parametrize("timm_name", TIMM_CONFIGS)
def test_timm_state_dict_loads_strictly_and_gives_timms_logits(timm_name):
    torch.manual_seed(0)
    reference = timm.create_model(timm_name, pretrained=False).eval()
    ours = VisionTransformer(**TIMM_CONFIGS[timm_name]).eval()
    ours.load_state_dict(reference.state_dict(), strict=True)
    images = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        expected, got = reference(images), ours(images)
    assert got.shape == (2, 1000)
    assert (got - expected).abs().max() <= 1e-5


def test_vit_base_parameter_count_matches_the_paper_and_timm():
    with torch.device("meta"):
        count = sum(p.numel() for p in VisionTransformer().parameters())
    assert count == 86_567_656


def test_small_mnist_configuration_matches_timm():
    kwargs = {"image_size": 28, "patch_size": 7, "in_channels": 1, "num_classes": 10, "dim": 64, "depth": 2, "num_heads": 4}
    reference = timm.models.vision_transformer.VisionTransformer(
        img_size=28, patch_size=7, in_chans=1, num_classes=10, embed_dim=64, depth=2, num_heads=4).eval()
    ours = VisionTransformer(**kwargs).eval()
    ours.load_state_dict(reference.state_dict(), strict=True)
    images = torch.randn(3, 1, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(ours(images), reference(images), rtol=1e-5, atol=1e-5)
        assert ours.embed(images).shape == (3, 64)


def test_attention_rows_sum_to_one_and_are_kept_on_request():
    attention = MultiHeadSelfAttention(dim=32, num_heads=4)
    attention.keep_attention = True
    out = attention(torch.randn(2, 5, 32))
    assert out.shape == (2, 5, 32)
    torch.testing.assert_close(attention.attention.sum(-1), torch.ones(2, 4, 5))
    assert attention.attention.shape == (2, 4, 5, 5)


def test_attention_equals_scaled_dot_product_attention():
    attention = MultiHeadSelfAttention(dim=32, num_heads=4).eval()
    tokens = torch.randn(2, 7, 32)
    q, k, v = attention.qkv(tokens).reshape(2, 7, 3, 4, 8).permute(2, 0, 3, 1, 4)
    library = torch.nn.functional.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(2, 7, 32)
    torch.testing.assert_close(attention(tokens), attention.proj(library), rtol=1e-5, atol=1e-5)


def test_bad_shapes_are_clear_errors():
    with pytest.raises(ValueError, match="not divisible by patch_size"):
        PatchEmbedding(image_size=30, patch_size=16)
    with pytest.raises(ValueError, match="not divisible by num_heads"):
        MultiHeadSelfAttention(dim=30, num_heads=4)
    with pytest.raises(ValueError, match="N×C×H×W"):
        VisionTransformer(image_size=28, patch_size=7, in_channels=1, dim=16, depth=1, num_heads=2)(torch.randn(1, 28, 28))
    assert PatchEmbedding(224, 16).num_patches == 196  # 14 × 14 patches; with [CLS], 197 tokens


@pytest.mark.parametrize("size", [(14, 14), (28, 14), (56, 42)])
def test_other_image_sizes_resample_position_embeddings_like_timm(size):
    """timm's dynamic_img_size=True resamples the learned grid bicubically; ours must give the same logits."""
    torch.manual_seed(0)
    reference = timm.models.vision_transformer.VisionTransformer(
        img_size=28, patch_size=7, in_chans=1, num_classes=10, embed_dim=64, depth=2, num_heads=4,
        dynamic_img_size=True).eval()
    ours = VisionTransformer(image_size=28, patch_size=7, in_channels=1, num_classes=10, dim=64, depth=2,
                             num_heads=4).eval()
    ours.load_state_dict(reference.state_dict(), strict=True)
    images = torch.randn(2, 1, *size)
    with torch.no_grad():
        torch.testing.assert_close(ours(images), reference(images), rtol=1e-5, atol=1e-5)
    assert ours.position_embeddings((4, 4)) is ours.pos_embed


def test_an_image_size_off_the_patch_grid_is_a_clear_error():
    model = VisionTransformer(image_size=28, patch_size=7, in_channels=1, dim=16, depth=1, num_heads=2)
    with pytest.raises(ValueError, match="20×28 is not divisible by patch_size 7"):
        model(torch.randn(1, 1, 20, 28))
