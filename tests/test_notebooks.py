"""Notebook hygiene and committed checkpoints: what a reader on GitHub and CI rely on.

(The notebooks themselves are executed by nbval: ``pytest`` collects ``notebooks/*.ipynb`` with the
``--nbval-lax`` option set in pyproject.toml.)
"""

import ast
import builtins
import json
import re
from pathlib import Path

import pytest
import torch
from torch import nn

from course_utils import clip, models, results, train, vit

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
CHECKPOINTS = sorted((ROOT / "data" / "checkpoints").glob("*.pt"))


def _load(path):
    return json.loads(path.read_text(encoding="utf-8"))


def _code_cells(notebook):
    return [c for c in notebook["cells"] if c["cell_type"] == "code" and "".join(c["source"]).strip()]


def test_there_are_notebooks():
    assert NOTEBOOKS, "no notebooks found"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_outputs_come_from_one_top_to_bottom_run_without_errors(path):
    cells = _code_cells(_load(path))
    assert [c["execution_count"] for c in cells] == list(range(1, len(cells) + 1)), \
        "execution counts are not 1..N: re-run the notebook top to bottom"
    assert any(c["outputs"] for c in cells), "no outputs committed"
    errors = [o.get("ename") for c in cells for o in c["outputs"] if o["output_type"] == "error"]
    assert not errors, f"error outputs committed: {errors}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_outputs_show_the_figures(path):
    """A run under a non-interactive backend (MPLBACKEND=Agg) commits plt.show() cells without their figures."""
    def has_image(cell):
        return any(key.startswith("image/") for output in cell["outputs"] for key in output.get("data", {}))

    showing = [cell for cell in _code_cells(_load(path)) if "plt.show()" in "".join(cell["source"])]
    # a few cells show a figure only when optional weights or a GPU are present
    missing = [cell for cell in showing if not has_image(cell)]
    assert len(missing) <= len(showing) // 4, \
        f"{len(missing)} of {len(showing)} cells that call plt.show() have no figure in the committed outputs"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_cell_ends_with_a_bare_call_that_returns_a_figure(path):
    """The returned Figure is displayed once as the cell's value and again by the inline backend."""
    for index, cell in enumerate(_code_cells(_load(path)), start=1):
        lines = "".join(cell["source"]).rstrip().splitlines()
        statements = [line for line in lines if line and not line.startswith((" ", "\t", ")", "]", "}", "#"))]
        if statements:
            assert not re.match(r"viz\.(show_images|plot_history|plot_confusion_matrix)\(", statements[-1]), \
                f"code cell {index} ends with {statements[-1][:40]}…: add plt.show() (or assign the figure)"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_figure_is_shown_twice(path):
    """A cell ending in a call that returns a Figure shows it twice under the inline backend: end it with plt.show()."""
    for index, cell in enumerate(_code_cells(_load(path)), start=1):
        images = [data for output in cell["outputs"] for key, data in output.get("data", {}).items()
                  if key.startswith("image/")]
        assert len(images) == len(set(map(str, images))), \
            f"code cell {index} shows the same figure twice: end it with plt.show()"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_prose_placeholder_is_left(path):
    """Text written after a measurement is drafted as a placeholder (TOY_RESULTS_TEXT): none may be committed."""
    for index, cell in enumerate(_load(path)["cells"]):
        if cell["cell_type"] == "markdown":
            left = re.findall(r"\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*_(?:TEXT|TODO|TBD)\b|\bTODO\b|\bTBD\b", "".join(cell["source"]))
            assert not left, f"cell {index} still holds {left}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_anatomy_badge_objectives_setup_exercises_results(path):
    notebook = _load(path)
    chapter = path.stem[:2]
    first = "".join(notebook["cells"][0]["source"])
    assert f"colab.research.google.com/github/{__import__('course_utils').COLAB_REPO}/blob/main/notebooks/" \
           f"{path.name}" in first, "the first cell needs the Open-in-Colab badge for this notebook"
    assert re.search(r"\n1\. .+\n2\. .+\n3\. ", first), "the first cell needs 3-6 numbered learning objectives"
    code = "\n".join("".join(c["source"]) for c in _code_cells(notebook))
    assert f'course_utils.setup("{chapter}"' in code
    assert "check_" in code, "exercises need check_… calls"
    assert f'record_results("{chapter}"' in code
    assert path.name == results.CHAPTERS[chapter][1]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_results_are_from_a_full_run(path):
    chapter = path.stem[:2]
    record = json.loads((ROOT / "data" / "results" / f"{chapter}.json").read_text())
    assert record["mode"] == "full" and record["chapter"] == chapter
    assert record["headline"] in record["metrics"] and record["seconds"] > 0


def test_readme_results_table_is_current():
    assert results.update_readme(ROOT / "README.md", check=True), \
        "README table is stale: python -m course_utils.results --update-readme"


def _run_defining_cell(sources, name, namespace, path, visited):
    """Execute the cell that defines ``name`` (class or function), after the cells defining the names it uses."""
    for index, source in enumerate(sources):
        if index not in visited and re.search(rf"^(class|def) {name}\b", source, re.MULTILINE):
            visited.add(index)
            # IPython magics (e.g. %%writefile, which saves the cell's code to a file) are not Python
            source = "\n".join(line for line in source.splitlines() if not line.lstrip().startswith("%"))
            used = {node.id for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Name)}
            for needed in sorted(used - set(namespace) - set(dir(builtins)) - {name}):
                _run_defining_cell(sources, needed, namespace, path, visited)  # e.g. a block from the cell before
            exec(compile(source, f"{path.name}:{name}", "exec"), namespace)  # noqa: S102 - our own notebook
            return


def notebook_definitions(notebook: str, name: str, **namespace) -> dict:
    """The namespace after running the cell of ``notebook`` that defines ``name`` (and the cells it needs)."""
    path = ROOT / "notebooks" / notebook
    sources = ["".join(cell["source"]) for cell in _code_cells(_load(path))]
    namespace = {"__name__": "notebook_cells", **namespace}
    _run_defining_cell(sources, name, namespace, path, visited=set())
    return namespace


def _model_class_from_notebooks(name):
    """The class ``name`` from course_utils.models, else from the notebook cell that defines it (and the cells
    defining what it uses), else from course_utils.vit or course_utils.clip (chapters 06-07; the names of their
    parts, e.g. ``MLP``, are not unique)."""
    if hasattr(models, name):
        return getattr(models, name)
    for path in NOTEBOOKS:
        sources = ["".join(cell["source"]) for cell in _code_cells(_load(path))]
        if any(re.search(rf"^class {name}\(", source, re.MULTILINE) for source in sources):
            namespace = {"torch": torch, "nn": nn, "__name__": "checkpoint_test"}
            _run_defining_cell(sources, name, namespace, path, visited=set())
            return namespace[name]
    for module in (vit, clip):
        if hasattr(module, name):
            return getattr(module, name)
    raise AssertionError(f"no notebook defines class {name}")


def notebook_definition(chapter, name, namespace=None):
    """The class or function ``name`` as notebook ``chapter`` (e.g. "02") defines it in a cell, together with the
    cells defining the names it uses: what a student edits, for comparing with its course_utils copy."""
    path = next(p for p in NOTEBOOKS if p.name.startswith(f"{chapter}_"))
    sources = ["".join(cell["source"]) for cell in _code_cells(_load(path))]
    namespace = {"torch": torch, "nn": nn, "__name__": "notebook_definition", **(namespace or {})}
    _run_defining_cell(sources, name, namespace, path, visited=set())
    assert name in namespace, f"{path.name} defines no class or function {name}"
    return namespace[name]


def test_chapter_02_small_cnn_is_the_course_utils_model():
    notebook_cnn = notebook_definition("02", "SmallCNN")
    for kwargs in ({}, {"in_channels": 3, "widths": (8, 12), "hidden": 20, "num_classes": 4, "image_size": 32}):
        reference, student = models.SmallCNN(**kwargs).eval(), notebook_cnn(**kwargs).eval()
        student.load_state_dict(reference.state_dict())  # strict: the same parameter and buffer names
        images = torch.randn(3, kwargs.get("in_channels", 1), kwargs.get("image_size", 28),
                             kwargs.get("image_size", 28))
        torch.testing.assert_close(student(images), reference(images))
        torch.testing.assert_close(student.embed(images), reference.embed(images))
    with pytest.raises(ValueError, match="divisible by 4"):
        notebook_cnn(image_size=30)


@pytest.mark.parametrize("path", CHECKPOINTS, ids=lambda p: p.stem)
def test_checkpoints_are_small_safe_and_load_into_the_current_code(path):
    assert path.stat().st_size <= 10 * 1024 * 1024, "checkpoints must stay ≤ 10 MB"
    payload = torch.load(path, weights_only=True)
    assert payload["mode"] == "full" and payload["metrics"]
    model_class = _model_class_from_notebooks(payload["model_class"])
    model = model_class(**payload["config"].get("model", {}))  # convention: constructor kwargs
    train.load_checkpoint(path.stem, model)
