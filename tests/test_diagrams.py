import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pytest
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

from course_utils.diagrams import Box, _edge_point, flowchart


def test_flowchart_draws_one_patch_per_box_and_arrow_with_labels():
    ax = flowchart({"x": (0, 0, "image"), "enc": (1, 0, "encoder", "#fce5cd"), "z": Box(2, 0, "latent")},
                   [("x", "enc", "pixels"), ("enc", "z"), ("z", "x", "decode", "--")],
                   curved={("z", "x"): 0.4}, title="pipeline")
    boxes = [p for p in ax.patches if isinstance(p, FancyBboxPatch)]
    arrows = [p for p in ax.patches if isinstance(p, FancyArrowPatch)]
    assert len(boxes) == 3 and len(arrows) == 3
    texts = {t.get_text() for t in ax.texts}
    assert {"image", "encoder", "latent", "pixels", "decode"} <= texts
    assert ax.get_title() == "pipeline"
    assert boxes[1].get_facecolor()[:3] == pytest.approx(matplotlib.colors.to_rgb("#fce5cd"))
    plt.close("all")


def test_arrows_start_and_end_on_the_box_edges():
    box = Box(0, 0, "a")
    assert _edge_point(box, (5, 0)) == pytest.approx((0.4, 0.0))   # right side
    assert _edge_point(box, (0, -5)) == pytest.approx((0.0, -0.25))  # bottom
    assert _edge_point(box, (0, 0)) == (0, 0)


def test_bad_specs_say_what_is_wrong():
    with pytest.raises(KeyError, match="missing|not given"):
        flowchart({"a": (0, 0, "a")}, [("a", "b")])
    with pytest.raises(TypeError, match="a box is"):
        flowchart({"a": (0, 0)})
    with pytest.raises(ValueError, match="an arrow is"):
        flowchart({"a": (0, 0, "a")}, [("a",)])
    plt.close("all")
