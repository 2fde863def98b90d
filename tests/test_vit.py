"""course_utils.vit: the from-scratch ViT loads timm's weights and reproduces timm's logits; chapter 06's notebook
cells define the same model."""

import ast
import functools
import json
import re
from pathlib import Path
from types import SimpleNamespace

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


# --- chapter 06 writes these classes out in notebook cells; they must stay the same model as course_utils.vit

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "06_vit_from_scratch.ipynb"
NOTEBOOK_CLASSES = ("PatchEmbedding", "MultiHeadSelfAttention", "MLP", "TransformerBlock", "VisionTransformer")


@functools.cache
def notebook_vit():
    """The ViT classes as chapter 06 defines them: its defining cells, executed in notebook order."""
    cells = json.loads(NOTEBOOK.read_text(encoding="utf-8"))["cells"]
    sources = ["".join(cell["source"]) for cell in cells if cell["cell_type"] == "code"]
    defining = [source for source in sources
                if any(re.search(rf"^class {name}\(", source, re.MULTILINE) for name in NOTEBOOK_CLASSES)]
    namespace = {"torch": torch, "nn": torch.nn, "F": torch.nn.functional, "__name__": "chapter_06"}
    for source in defining:
        tree = ast.parse(source)
        assert all(isinstance(node, ast.ClassDef) for node in tree.body), \
            "a cell defining the ViT's classes should hold only class definitions (its demo goes in the next cell)"
        exec(compile(tree, NOTEBOOK.name, "exec"), namespace)  # noqa: S102 - the course's own notebook
    missing = [name for name in NOTEBOOK_CLASSES if name not in namespace]
    assert not missing, f"chapter 06 no longer defines {missing} in a notebook cell"
    return SimpleNamespace(**{name: namespace[name] for name in NOTEBOOK_CLASSES})


NOTEBOOK_CONFIGS = {
    "mnist": {"image_size": 28, "patch_size": 7, "in_channels": 1, "num_classes": 10, "dim": 96, "depth": 6,
              "num_heads": 4, "mlp_ratio": 2.0},
    "features_only": {"image_size": 28, "patch_size": 7, "in_channels": 1, "num_classes": 0, "dim": 64,
                      "depth": 4, "num_heads": 4, "mlp_ratio": 2.0},
    "rgb_no_qkv_bias": {"image_size": 32, "patch_size": 8, "in_channels": 3, "num_classes": 5, "dim": 48,
                        "depth": 2, "num_heads": 3, "qkv_bias": False},
}


@pytest.mark.parametrize("config", NOTEBOOK_CONFIGS, ids=str)
def test_the_notebooks_vit_equals_course_utils_vit(config):
    kwargs = NOTEBOOK_CONFIGS[config]
    torch.manual_seed(0)
    package = VisionTransformer(**kwargs).eval()
    notebook = notebook_vit().VisionTransformer(**kwargs).eval()
    theirs, ours = package.state_dict(), notebook.state_dict()
    assert list(ours) == list(theirs), "the notebook's ViT and course_utils.vit name their parameters differently"
    assert {k: v.shape for k, v in ours.items()} == {k: v.shape for k, v in theirs.items()}
    notebook.load_state_dict(theirs, strict=True)
    images = torch.randn(3, kwargs["in_channels"], kwargs["image_size"], kwargs["image_size"])
    with torch.no_grad():
        torch.testing.assert_close(notebook(images), package(images), rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(notebook.embed(images), package.embed(images), rtol=1e-5, atol=1e-5)


def test_the_notebooks_parts_equal_course_utils_parts():
    from course_utils import vit

    parts = notebook_vit()
    pairs = [(parts.PatchEmbedding(32, 8, 3, 48), vit.PatchEmbedding(32, 8, 3, 48), torch.randn(2, 3, 32, 32)),
             (parts.MultiHeadSelfAttention(48, 3), vit.MultiHeadSelfAttention(48, 3), torch.randn(2, 17, 48)),
             (parts.TransformerBlock(48, 3, 2.0), vit.TransformerBlock(48, 3, 2.0), torch.randn(2, 17, 48))]
    for notebook, package, inputs in pairs:
        notebook.load_state_dict(package.state_dict(), strict=True)
        with torch.no_grad():
            torch.testing.assert_close(notebook(inputs), package(inputs), rtol=1e-5, atol=1e-5)
    notebook_attention, package_attention = pairs[1][0], pairs[1][1]  # attention maps (section 8) agree too
    notebook_attention.keep_attention = package_attention.keep_attention = True
    with torch.no_grad():
        notebook_attention(pairs[1][2])
        package_attention(pairs[1][2])
    torch.testing.assert_close(notebook_attention.attention, package_attention.attention)
    with torch.device("meta"):
        assert sum(p.numel() for p in parts.VisionTransformer().parameters()) == 86_567_656
