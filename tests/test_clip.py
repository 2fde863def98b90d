"""Chapter 07's mini-CLIP parts: tokenizer, causal text tower, CLIP towers, caption decoder and projector."""

import math

import pytest
import torch

from course_utils import captioned_shapes as scenes
from course_utils import clip


@pytest.fixture
def tokenizer():
    return clip.WordTokenizer(scenes.VOCABULARY, context_length=12)


def test_tokenizer_appends_eos_pads_and_round_trips(tokenizer):
    ids = tokenizer(["a red circle", "a small blue cross on the left"])
    assert ids.shape == (2, 12) and ids.dtype == torch.long
    assert ids[0, 3] == tokenizer.eos_id and (ids[0, 4:] == 0).all()
    assert tokenizer.decode(ids[1]) == "a small blue cross on the left"
    with_bos = tokenizer("a red circle", bos=True)
    assert with_bos[0, 0] == tokenizer.bos_id and tokenizer.decode(with_bos[0]) == "a red circle"


def test_tokenizer_refuses_unknown_words_and_overlong_texts(tokenizer):
    with pytest.raises(ValueError, match="not in the vocabulary"):
        tokenizer("a red dog")
    with pytest.raises(ValueError, match="context length"):
        tokenizer(" ".join(["a"] * 12))
    with pytest.raises(ValueError, match="<pad>"):
        clip.WordTokenizer(["a", "<eos>"], 4)


def test_text_encoder_reads_eos_and_ignores_padding_after_it(tokenizer):
    torch.manual_seed(0)
    encoder = clip.TextEncoder(len(scenes.VOCABULARY), 12, tokenizer.eos_id).eval()
    ids = tokenizer(["a red circle", "a small red circle on the left"])
    noisy = ids.clone()
    noisy[0, 4:] = 5  # garbage after <eos>: the causal mask means it cannot change the <eos> state
    with torch.no_grad():
        assert torch.allclose(encoder(ids), encoder(noisy), atol=1e-6)
        changed = ids.clone()
        changed[0, 1] = tokenizer.ids["blue"]
        assert not torch.allclose(encoder(ids)[0], encoder(changed)[0])
    with pytest.raises(ValueError, match="<eos>"):
        encoder(torch.full((1, 12), tokenizer.ids["a"]))


def test_mini_clip_embeddings_are_unit_vectors_and_the_scale_starts_at_1_over_0_07(tokenizer):
    torch.manual_seed(0)
    model = clip.MiniCLIP(len(scenes.VOCABULARY), tokenizer.eos_id).eval()
    images, combinations = scenes.sample(scenes.COMBINATIONS, 3, torch.Generator().manual_seed(0))
    with torch.no_grad():
        image_features, text_features, scale = model(images, tokenizer([scenes.caption(c) for c in combinations]))
    assert image_features.shape == text_features.shape == (3, 64)
    assert torch.allclose(image_features.norm(dim=-1), torch.ones(3))
    assert torch.allclose(text_features.norm(dim=-1), torch.ones(3))
    assert math.isclose(scale.item(), 1 / 0.07, rel_tol=1e-5)
    assert model.encode_image(images, normalize=False).norm(dim=-1).sub(1).abs().max() > 1e-3


def test_caption_decoder_is_causal_and_uses_its_prefix(tokenizer):
    torch.manual_seed(0)
    decoder = clip.CaptionDecoder(len(scenes.VOCABULARY), context_length=16).eval()
    ids = tokenizer(["a red circle"], bos=True)[:, :6]
    prefix = torch.randn(1, 4, 64)
    with torch.no_grad():
        logits = decoder(ids, prefix)
        assert logits.shape == (1, 10, len(scenes.VOCABULARY))
        later_changed = ids.clone()
        later_changed[0, 4] = 7
        assert torch.allclose(decoder(later_changed, prefix)[:, :8], logits[:, :8], atol=1e-6), "no peeking ahead"
        assert not torch.allclose(decoder(ids, torch.randn(1, 4, 64)), logits), "the prefix conditions the output"
        new = decoder.generate(ids[:, :1], prefix, max_new_tokens=5)
    assert new.shape == (1, 5)
    with pytest.raises(ValueError, match="context length"):
        decoder(torch.zeros(1, 14, dtype=torch.long), prefix)


def test_greedy_generation_stops_when_every_row_has_ended():
    decoder = clip.CaptionDecoder(5, context_length=8)
    with torch.no_grad():
        decoder.lm_head.weight.zero_()
        decoder.lm_head.bias.copy_(torch.tensor([0.0, 5.0, 0.0, 0.0, 0.0]))  # always predicts id 1
    out = decoder.generate(torch.zeros(2, 1, dtype=torch.long), max_new_tokens=6, eos_id=1)
    assert out.tolist() == [[1], [1]]


def test_projector_makes_prefix_tokens_linear_or_mlp():
    linear = clip.Projector(image_dim=64, text_dim=32, prefix_tokens=4)
    mlp = clip.Projector(image_dim=64, text_dim=32, prefix_tokens=4, hidden_dim=16)
    features = torch.randn(5, 64)
    assert linear(features).shape == mlp(features).shape == (5, 4, 32)
    assert isinstance(linear.mlp, torch.nn.Linear) and len(mlp.mlp) == 3
    assert torch.allclose(linear(2 * features) - linear(features), linear(features) - linear(0 * features), atol=1e-5)


def test_the_notebooks_text_encoder_and_mini_clip_are_course_utils_clips(tokenizer):
    """Chapter 07 writes TextEncoder and MiniCLIP out in cells; course_utils.clip keeps the same classes."""
    from test_notebooks import notebook_definitions

    namespace = notebook_definitions("07_clip_and_multimodal.ipynb", "MiniCLIP", torch=torch, nn=torch.nn)
    config = {"vocab_size": len(scenes.VOCABULARY), "eos_id": tokenizer.eos_id, "embed_dim": 32}
    torch.manual_seed(0)
    ours = namespace["MiniCLIP"](**config).eval()
    torch.manual_seed(0)
    saved = clip.MiniCLIP(**config).eval()
    assert list(ours.state_dict()) == list(saved.state_dict()), "the same parameter names, in the same order"
    for name, tensor in saved.state_dict().items():  # the same seed gives the same initial weights
        torch.testing.assert_close(ours.state_dict()[name], tensor, rtol=0, atol=0, msg=name)
    with torch.no_grad():  # trained-looking weights: perturb them, then load the same ones into both
        for parameter in saved.parameters():
            parameter.add_(0.1 * torch.randn_like(parameter))
    ours.load_state_dict(saved.state_dict())
    images, combinations = scenes.sample(scenes.COMBINATIONS, 6, torch.Generator().manual_seed(1))
    ids = tokenizer([scenes.caption(c) for c in combinations])
    with torch.no_grad():
        for mine, reference in zip(ours(images, ids), saved(images, ids)):
            torch.testing.assert_close(mine, reference, rtol=0, atol=0)
        torch.testing.assert_close(ours.encode_image(images, normalize=False),
                                   saved.encode_image(images, normalize=False), rtol=0, atol=0)
        torch.testing.assert_close(ours.encode_text(ids, normalize=False), saved.encode_text(ids, normalize=False),
                                   rtol=0, atol=0)
    with pytest.raises(ValueError, match="<eos>"):
        ours.text(torch.full((1, 12), tokenizer.ids["a"]))
