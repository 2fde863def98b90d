"""The captioned-shapes world of chapter 07: exact captions, a clean held-out split, reproducible images."""

import random

import pytest
import torch

from course_utils import captioned_shapes as scenes


def test_the_world_has_192_combinations_and_a_disjoint_held_out_split():
    assert len(scenes.COMBINATIONS) == 6 * 4 * 2 * 4 == 192
    assert len(scenes.HELD_OUT_COMBINATIONS) == 6 * 8 and len(scenes.TRAIN_COMBINATIONS) == 144
    assert not set(scenes.TRAIN_COMBINATIONS) & set(scenes.HELD_OUT_COMBINATIONS)
    held_out_colors = [color for color, _ in scenes.HELD_OUT]
    assert sorted(held_out_colors) == sorted(scenes.COLORS), "one held-out pair per colour"
    assert {shape for _, shape in scenes.HELD_OUT} == set(scenes.SHAPES), "every shape is held out at least once"
    for color, shape in scenes.HELD_OUT:  # both words of a held-out pair are still seen in training
        assert any(c.color == color for c in scenes.TRAIN_COMBINATIONS)
        assert any(c.shape == shape for c in scenes.TRAIN_COMBINATIONS)


def test_captions_say_every_attribute_and_parse_back():
    combination = scenes.Combination("red", "circle", "small", "left")
    assert scenes.caption(combination) == "a small red circle on the left"
    assert scenes.caption(combination._replace(position="top")) == "a small red circle at the top"
    for c in scenes.COMBINATIONS:
        assert scenes.parse_caption(scenes.caption(c)) == c._asdict()
    assert scenes.parse_caption("A cyan cross.") == {"color": "cyan", "shape": "cross", "size": None, "position": None}


def test_caption_dropout_keeps_colour_and_shape_and_drops_the_rest_sometimes():
    rng = random.Random(0)
    combination = scenes.Combination("blue", "square", "large", "bottom")
    captions = [scenes.caption(combination, 0.3, rng) for _ in range(2000)]
    assert all("blue square" in text for text in captions)
    dropped_size = sum("large" not in text for text in captions) / len(captions)
    dropped_position = sum("bottom" not in text for text in captions) / len(captions)
    assert 0.25 < dropped_size < 0.35 and 0.25 < dropped_position < 0.35
    assert set(captions) == {"a large blue square at the bottom", "a blue square at the bottom",
                             "a large blue square", "a blue square"}


def test_every_caption_and_template_word_is_in_the_vocabulary():
    words = {word for c in scenes.COMBINATIONS for word in scenes.caption(c).split()}
    words |= {"photo", "of", "shape"}
    assert words <= set(scenes.VOCABULARY)
    assert scenes.VOCABULARY[0] == "<pad>" and len(set(scenes.VOCABULARY)) == len(scenes.VOCABULARY)


def test_images_are_reproducible_and_show_the_right_colour_where_the_shape_is():
    first, combos = scenes.sample(scenes.COMBINATIONS, 6, torch.Generator().manual_seed(4))
    again, combos_again = scenes.sample(scenes.COMBINATIONS, 6, torch.Generator().manual_seed(4))
    assert torch.equal(first, again) and combos == combos_again
    assert first.shape == (6, 3, 32, 32)
    for color in scenes.COLORS:
        combination = scenes.Combination(color, "square", "large", "left")
        image = scenes.draw(combination, jitter=False)
        inside = image[:, 16, 10]
        assert torch.allclose(inside / inside.max(), torch.tensor(scenes.COLORS[color]) / max(scenes.COLORS[color]))
        assert image[:, 16, 28].abs().max() == 0, "the right half of a left-hand shape is background"


@pytest.mark.parametrize("shape", scenes.SHAPES)
def test_shapes_have_distinct_masks_and_sizes_differ(shape):
    small = scenes.shape_mask(shape, 16, 16, scenes.SIZES["small"])
    large = scenes.shape_mask(shape, 16, 16, scenes.SIZES["large"])
    assert 10 < small.sum() < large.sum()
    assert (small & ~large).sum() == 0, "the small shape lies inside the large one"
    for other in scenes.SHAPES:
        if other != shape:
            assert (scenes.shape_mask(other, 16, 16, 9.0) ^ large).sum() > 10


def test_unknown_shape_is_an_error():
    with pytest.raises(ValueError, match="unknown shape"):
        scenes.shape_mask("hexagon", 16, 16, 5)
