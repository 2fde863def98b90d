import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from course_utils import viz


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.mark.parametrize("image, shape", [
    (torch.rand(3, 5, 7), (5, 7, 3)),            # CHW float
    (torch.rand(1, 5, 7), (5, 7)),               # 1×H×W gray
    (np.zeros((5, 7, 3), np.uint8), (5, 7, 3)),  # HWC uint8
    (np.zeros((5, 7, 1), np.float32), (5, 7)),   # H×W×1
    (np.zeros((5, 7)), (5, 7)),                  # H×W
])
def test_to_hwc_display_layouts(image, shape):
    assert viz.to_hwc_display(image).shape == shape


def test_to_hwc_display_keeps_uint8_and_rescales_normalised_floats():
    assert viz.to_hwc_display(np.full((2, 2), 200, np.uint8)).dtype == np.uint8
    shown = viz.to_hwc_display(torch.tensor([[-2.0, 0.0], [1.0, 2.0]]))
    assert shown.min() == 0.0 and shown.max() == 1.0
    inside = viz.to_hwc_display(np.array([[0.2, 0.4]]))
    assert np.allclose(inside, [[0.2, 0.4]])  # already displayable: untouched
    assert viz.to_hwc_display(np.array([[True, False]])).dtype == np.float32


def test_to_hwc_display_rejects_bad_shapes():
    with pytest.raises(ValueError, match=r"got shape \(2, 5, 5, 5\)"):
        viz.to_hwc_display(np.zeros((2, 5, 5, 5)))
    with pytest.raises(ValueError, match=r"got shape \(5, 5, 4\)"):
        viz.to_hwc_display(np.zeros((5, 5, 4)))


def test_show_images_grid_and_titles():
    fig = viz.show_images(torch.rand(10, 1, 8, 8), titles=list(range(10)), ncols=4, suptitle="grid")
    visible = [ax for ax in fig.axes if ax.images]
    assert len(fig.axes) == 12 and len(visible) == 10
    assert visible[3].get_title() == "3"
    assert len(viz.show_images(np.zeros((6, 8, 8))).axes) == 6
    assert len(viz.show_images(torch.rand(3, 8, 8)).axes) == 1  # one CHW colour image


def test_show_images_validates():
    with pytest.raises(ValueError, match="at least one image"):
        viz.show_images([])
    with pytest.raises(ValueError, match="got 2 images but 1 titles"):
        viz.show_images([np.zeros((4, 4))] * 2, titles=["a"])


def test_plot_history_draws_train_and_val():
    history = {"epoch": [1, 2], "train_loss": [1.0, 0.5], "val_loss": [1.1, 0.6], "train_accuracy": [0.5, 0.7]}
    fig = viz.plot_history(history)
    assert len(fig.axes) == 2
    assert [line.get_label() for line in fig.axes[0].lines] == ["train", "val"]
    assert fig.axes[0].get_xlabel() == "epoch" and fig.axes[0].get_title()
    with pytest.raises(ValueError, match="history has none of"):
        viz.plot_history({"epoch": [1]})


def test_draw_boxes_and_masks_change_the_right_pixels():
    image = torch.zeros(3, 20, 20)
    boxed = viz.draw_boxes(image, [[2, 2, 10, 10]], labels=["a"], colors="red", width=1)
    assert boxed.dtype == torch.uint8 and boxed.shape == (3, 20, 20)
    assert boxed[0, 2, 5] == 255 and boxed[0, 15, 15] == 0
    mask = np.zeros((20, 20), bool)
    mask[5:8, 5:8] = True
    masked = viz.draw_masks(np.zeros((20, 20), np.uint8), mask, alpha=1.0, colors="blue")
    assert masked[2, 6, 6] == 255 and masked[2, 0, 0] == 0
    with pytest.raises(ValueError, match=r"boxes must be \(N, 4\)"):
        viz.draw_boxes(image, [1, 2, 3, 4])
    with pytest.raises(ValueError, match="got 1 boxes but 2 labels"):
        viz.draw_boxes(image, [[0, 0, 1, 1]], labels=["a", "b"])
    with pytest.raises(ValueError, match="matching the image"):
        viz.draw_masks(image, np.zeros((1, 5, 5), bool))


def test_confusion_matrix_counts_rows_true_columns_predicted():
    matrix = viz.confusion_matrix([0, 1, 1, 2], [0, 1, 2, 2], num_classes=3)
    assert matrix.tolist() == [[1, 0, 0], [0, 1, 0], [0, 1, 1]]
    with pytest.raises(ValueError, match="equal 1-D shapes"):
        viz.confusion_matrix([0, 1], [0], num_classes=2)
    fig = viz.plot_confusion_matrix(matrix, ["a", "b", "c"])
    assert fig.axes[0].get_xlabel() == "predicted class"


def test_figure_problems_names_missing_titles_and_labels_but_exempts_images_categories_and_shared_axes():
    import io

    fig, ax = plt.subplots()
    ax.plot([1, 2, 3])
    fig.savefig(io.BytesIO())
    assert len(viz.figure_problems(fig)) == 3  # no title, no x label, no y label
    ax.set(title="loss", xlabel="step", ylabel="value")
    assert viz.figure_problems(fig) == []
    fig, axes = plt.subplots(1, 3, sharey=True, figsize=(8, 2))
    axes[0].plot([1, 2])
    axes[0].set(xlabel="epoch", ylabel="accuracy")
    axes[1].plot([1, 2])
    axes[1].set(xlabel="epoch")
    axes[2].imshow(np.zeros((4, 4)))
    axes[2].axis("off")
    fig.colorbar(axes[2].images[0])
    fig.suptitle("shared y axis, one image")
    fig.savefig(io.BytesIO())
    assert viz.figure_problems(fig) == []  # inner y tick labels are hidden; the suptitle names the figure
    fig, ax = plt.subplots()
    ax.barh(["cat", "dog"], [0.2, 0.8])
    ax.set_title("top-2")
    fig.savefig(io.BytesIO())
    assert viz.figure_problems(fig) == ["'top-2', 'top-2': the x axis shows numbers but has no label"]
    plt.close("all")


def test_watched_figures_are_recorded_once(monkeypatch):
    import io

    monkeypatch.setattr(viz, "FIGURE_PROBLEMS", [])
    viz.watch_figures()
    viz.watch_figures()  # idempotent: one wrapper
    fig, ax = plt.subplots()
    ax.plot([1, 2])
    ax.set(title="untitled axes", ylabel="y")
    fig.savefig(io.BytesIO())
    fig.savefig(io.BytesIO())
    assert viz.FIGURE_PROBLEMS == ["'untitled axes', 'untitled axes': the x axis shows numbers but has no label"]
    plt.close("all")
