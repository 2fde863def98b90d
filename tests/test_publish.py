"""The slides and website builder (tools/publish.py).

Unit tests pin the slide convention on small notebooks and the landing page built from the README; one
full build of the website and all decks (once per session, into a temporary folder) is then checked file
by file. tests/test_browser.py opens the same build in headless Chromium.
"""

import base64
import copy
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

pytest.importorskip("nbconvert")
pytest.importorskip("markdown_it")

from tools import publish

REPO = Path(__file__).resolve().parents[1]
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 16).decode()
COLAB = "https://colab.research.google.com/github/open-cv-course/pixels-to-clip/blob/main/notebooks/{}.ipynb"


# --- small notebooks --------------------------------------------------------------------------------
def figure(text="<Figure size 640x480 with 1 Axes>"):
    return new_output("display_data", data={"image/png": PNG, "text/plain": text})


def printed(text="done\n", name="stdout"):
    return new_output("stream", name=name, text=text)


def widget():
    return new_output(
        "display_data",
        data={
            publish.WIDGET_VIEW: {"model_id": "abc", "version_major": 2, "version_minor": 0},
            "text/plain": "epoch 1/4: 100%",
        },
    )


def notebook(*cells):
    nb = new_notebook(cells=list(cells))
    for index, cell in enumerate(nb.cells):
        cell["id"] = f"c{index}"
    return nb


def roles(tagged):
    """(type, slide_type, first line, code hidden) of every cell of a tagged notebook."""
    return [
        (
            cell.cell_type,
            cell.metadata["slideshow"]["slide_type"],
            cell.source.splitlines()[0] if cell.source else "",
            cell.metadata.get("transient", {}).get("remove_source", False),
        )
        for cell in tagged.cells
    ]


CHAPTER = notebook(
    new_markdown_cell(
        f"# 42 · A chapter\n\n[![Open In Colab]({publish.COLAB_BADGE_URL})](https://colab/x)\n\n"
        "Why this matters, in prose.\n\n**You will**\n\n1. learn a thing;\n2. learn another."
    ),
    new_markdown_cell("## Setup"),
    new_code_cell('import sys\nif "google.colab" in sys.modules:\n    !pip install -q x'),
    new_code_cell("import torch\nimport course_utils\nenv = course_utils.setup('42')"),
    new_markdown_cell(
        "## 1 · Attention\nEvery token looks at every other one:\n\n$$y = \\mathrm{softmax}(x)$$\n\n"
        "| a | b |\n|---|---|\n| 1 | 2 |\n\nMore prose after the table."
    ),
    new_code_cell("def attention(q, k, v):\n    return q", outputs=[]),
    new_markdown_cell("**Verify against PyTorch** on the same inputs."),
    new_code_cell(
        "assert attention(1, 2, 3) == 1\nprint('equal')", outputs=[printed(), printed("warn\n", "stderr")]
    ),
    new_code_cell("\n".join(f"line_{i} = {i}" for i in range(20)) + "\nplt.show()", outputs=[figure()]),
    new_markdown_cell("The figure shows that attention works."),
    new_markdown_cell("### A subsection\nIts prose."),
    new_code_cell("\n".join(f"helper_{i} = {i}" for i in range(30))),  # long helper, no output: skipped
    new_code_cell(
        "\n".join(f"row_{i} = {i}" for i in range(30)) + "\nprint(row_0)", outputs=[printed("0\n")]
    ),
    new_code_cell("for epoch in range(2):\n    pass", outputs=[widget()]),
    new_markdown_cell("## Summary\n- attention is a weighted average;\n- check against the library."),
)


# --- the slide convention ----------------------------------------------------------------------------
def test_setup_section_installs_and_imports_are_skipped():
    tagged = publish.tag_for_slides(CHAPTER)
    skipped = [source for kind, role, source, _ in roles(tagged) if role == "skip"]
    assert skipped == ["## Setup", "import sys", "import torch", "helper_0 = 0"]


def test_title_slide_keeps_the_badge_and_objectives_and_notes_the_prose():
    cells = roles(publish.tag_for_slides(CHAPTER))
    assert cells[0] == ("markdown", "slide", "# 42 · A chapter", False)
    title = publish.tag_for_slides(CHAPTER).cells[0].source
    assert "data:image/svg+xml;base64," in title and publish.COLAB_BADGE_URL not in title
    assert cells[1] == ("markdown", "notes", "Why this matters, in prose.", False)
    assert cells[2] == ("markdown", "-", "1. learn a thing;", False)  # the objectives, on the title slide


def test_headings_open_slides_and_equations_and_tables_stay_visible():
    tagged = publish.tag_for_slides(CHAPTER)
    sources = {cell.source.splitlines()[0]: cell for cell in tagged.cells if cell.source}
    heading = sources["## 1 · Attention"]
    assert heading.metadata.slideshow.slide_type == "slide" and heading.source == "## 1 · Attention"
    assert sources["Every token looks at every other one:"].metadata.slideshow.slide_type == "notes"
    maths = sources["$$y = \\mathrm{softmax}(x)$$"]
    assert maths.metadata.slideshow.slide_type == "-" and "| 1 | 2 |" in maths.source  # equation and table
    assert sources["More prose after the table."].metadata.slideshow.slide_type == "notes"
    assert sources["### A subsection"].metadata.slideshow.slide_type == "slide"
    assert sources["## Summary"].metadata.slideshow.slide_type == "slide"
    assert (
        "- attention is a weighted average;" in sources["## Summary"].source
    )  # a list stays with its heading


def test_code_roles_figures_key_code_long_cells_and_helpers():
    cells = [
        cell for cell in roles(publish.tag_for_slides(CHAPTER)) if cell[0] == "code" and cell[1] != "skip"
    ]
    assert cells == [
        ("code", "slide", "def attention(q, k, v):", False),  # key code, shown
        ("code", "slide", "assert attention(1, 2, 3) == 1", False),  # short code with its output
        ("code", "slide", "line_0 = 0", True),  # a figure: the figure only
        ("code", "-", "row_0 = 0", True),  # long code with output: the output only, joins "### A subsection"
        ("code", "slide", "for epoch in range(2):", False),
    ]


def test_code_right_after_a_bare_heading_joins_its_slide():
    nb = notebook(
        new_markdown_cell("# T"),
        new_markdown_cell("## Section"),
        new_code_cell("x = 1", outputs=[printed()]),
        new_code_cell("y = 2", outputs=[printed()]),
    )
    assert [role for _, role, _, _ in roles(publish.tag_for_slides(nb))] == ["slide", "slide", "-", "slide"]


def test_prose_is_noted_on_the_slide_it_introduces_or_follows():
    tagged = publish.tag_for_slides(CHAPTER)
    order = [(role, source) for _, role, source, _ in roles(tagged)]
    verify = order.index(("notes", "**Verify against PyTorch** on the same inputs."))
    assert order[verify - 1] == ("slide", "assert attention(1, 2, 3) == 1")  # moved onto the code's slide
    comment = order.index(("notes", "The figure shows that attention works."))
    assert order[comment - 1] == ("slide", "line_0 = 0")  # stays on the figure's slide
    assert order[order.index(("slide", "### A subsection")) + 1] == ("notes", "Its prose.")


def test_stderr_and_widgets_stay_out_of_decks_but_the_site_keeps_the_text():
    tagged = publish.tag_for_slides(CHAPTER)
    checked = next(cell for cell in tagged.cells if cell.source.startswith("assert attention"))
    assert [output.name for output in checked.outputs] == ["stdout"]
    loop = next(cell for cell in tagged.cells if cell.source.startswith("for epoch"))
    assert loop.outputs == []
    site = publish.clean_notebook(CHAPTER, badge="colab-badge.svg")
    loop = next(cell for cell in site.cells if cell.source.startswith("for epoch"))
    assert loop.outputs[0]["data"] == {"text/plain": "epoch 1/4: 100%"}
    assert "](colab-badge.svg)" in site.cells[0].source


def test_cleaning_drops_widget_state_and_empty_widget_outputs():
    nb = copy.deepcopy(CHAPTER)
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    only_widget = new_output("display_data", data={publish.WIDGET_VIEW: {"model_id": "m"}})
    nb.cells.append(new_code_cell("bar()", outputs=[only_widget, printed()]))
    cleaned = publish.clean_notebook(nb)
    assert "widgets" not in cleaned.metadata and "widgets" in nb.metadata
    assert [output.output_type for output in cleaned.cells[-1].outputs] == ["stream"]


def test_tagging_leaves_the_input_notebook_alone():
    before = copy.deepcopy(CHAPTER)
    publish.tag_for_slides(CHAPTER)
    assert CHAPTER == before


def test_plumbing_detection():
    assert publish.is_plumbing("")
    assert publish.is_plumbing("# just a comment\n")
    assert publish.is_plumbing("from torch import (\n    nn,\n    optim,\n)")
    assert publish.is_plumbing("%pip install timm")
    assert not publish.is_plumbing("%timeit f()")  # a magic, not an import
    assert not publish.is_plumbing("import torch\nx = torch.ones(2)")


def test_raw_cells_and_notebooks_without_a_title():
    nb = notebook(
        nbformat.v4.new_raw_cell("raw"),
        new_markdown_cell("Some prose first."),
        new_code_cell("x = 1", outputs=[printed()]),
    )
    tagged = publish.tag_for_slides(nb)
    assert roles(tagged) == [
        ("raw", "skip", "raw", False),
        ("code", "slide", "x = 1", False),
        ("markdown", "notes", "Some prose first.", False),
    ]
    assert publish.slide_count(tagged) == 1
    assert publish.slide_count(publish.tag_for_slides(notebook(nbformat.v4.new_raw_cell("raw")))) == 0
    assert publish.chapter_title(nb, "fallback") == "fallback"


def test_slide_count_matches_the_exported_deck_and_it_loads_nothing_remote(tmp_path):
    tagged = publish.tag_for_slides(CHAPTER)
    html = publish.deck_html(tagged, "42 · A chapter", vendor_url="../_static/course-vendor")
    assert publish.slide_count(tagged) == 8
    assert html.count("<section") == 2 * publish.slide_count(tagged)  # a slide and its single subslide
    assert html.count('<aside class="notes">') == 6
    assert "line_0 = 0" not in html and "helper_0" not in html and "google.colab" not in html
    remote = re.findall(r'(?:src|href)="(?:https?:)?//[^"]+"', html)
    assert [link for link in remote if "colab" not in link] == []
    assert '<script src="../_static/course-vendor/reveal.js/dist/reveal.js">' in html
    assert 'src="../_static/course-vendor/mathjax/tex-chtml.js"' in html
    assert "require.js" not in html and "jquery" not in html.lower()


# --- the landing page ---------------------------------------------------------------------------------
def test_landing_page_is_built_from_the_readme():
    notebooks = publish.chapter_notebooks()
    page = publish.landing_page((REPO / "README.md").read_text(encoding="utf-8"), notebooks)
    assert page.startswith("# ")
    assert len(notebooks) == 10
    for path in notebooks:
        assert f"](notebooks/{path.name})" in page  # the README's table row, linking the chapter page
        assert f"\nnotebooks/{path.stem}\n" in page  # in the sidebar's table of contents
        assert f'href="slides/{path.stem}.slides.html"' in page
    assert "## Quickstart" not in page


def test_landing_page_needs_the_readme_table():
    notebooks = [Path("00_a.ipynb"), Path("01_b.ipynb")]
    with pytest.raises(publish.PublishError, match="title"):
        publish.landing_page("no title here", notebooks)
    with pytest.raises(publish.PublishError, match=r"results-table"):
        publish.landing_page("# T\n\nintro\n\n## Chapters\n| a |", notebooks)
    table = (
        "# T\n<!-- results-table:start -->\n| 00 | [a](notebooks/00_a.ipynb) |\n<!-- results-table:end -->"
    )
    with pytest.raises(publish.PublishError, match=r"01_b\.ipynb"):
        publish.landing_page(table, notebooks)


def test_missing_notebooks_and_assets_say_what_to_do(tmp_path, monkeypatch):
    with pytest.raises(publish.PublishError, match="no chapter notebooks"):
        publish.chapter_notebooks(tmp_path)
    monkeypatch.setattr(publish.shutil, "which", lambda name: None)
    with pytest.raises(publish.PublishError, match="npm ci --prefix book"):
        publish.ensure_vendor(tmp_path / "node_modules")


def test_never_replaces_a_folder_that_is_not_a_build(tmp_path):
    (tmp_path / "precious.txt").write_text("keep me")
    with pytest.raises(publish.PublishError, match="not a previous build"):
        publish.publish(tmp_path, slides_only=True)
    assert (tmp_path / "precious.txt").read_text() == "keep me"


def test_command_line(monkeypatch, capsys, tmp_path):
    assert publish.main(["--rules"]) == 0
    assert "Setup section" in capsys.readouterr().out

    def fake_publish(out, slides_only):
        return {
            "out": str(out),
            "warnings": "a warning",
            "slides": {"06_x": 3},
            "slides_seconds": 1.0,
            "site_seconds": 2.0,
        }

    monkeypatch.setattr(publish, "publish", fake_publish)
    assert publish.main(["--out", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    assert "06_x: 3 slides" in captured.out and "website built in 2.0 s" in captured.out
    assert "a warning" in captured.err

    def failing(out, slides_only):
        raise publish.PublishError("npm is not installed")

    monkeypatch.setattr(publish, "publish", failing)
    assert publish.main([]) == 1
    assert "npm is not installed" in capsys.readouterr().err


# --- one full build -----------------------------------------------------------------------------------
_BUILDS = {}
_WRITES = {"active": False, "paths": []}
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC


def _record_writes(event, args):
    """Audit hook: while a build runs, every file this process opens for writing."""
    path, _, flags = args if event == "open" else (None, None, None)
    if _WRITES["active"] and isinstance(path, (str, bytes, os.PathLike)) and (flags or 0) & _WRITE_FLAGS:
        _WRITES["paths"].append(os.path.realpath(os.fsdecode(path)))


def build_once(tmp_path_factory):
    """Build the website and every deck once per test session (shared with tests/test_browser.py)."""
    key = str(tmp_path_factory.getbasetemp())
    if key not in _BUILDS:
        for module in ("sphinx", "myst_nb", "sphinx_book_theme"):
            pytest.importorskip(module, reason=f"{module} missing: pip install -e '.[site]'")
        try:
            publish.ensure_vendor()
        except (publish.PublishError, subprocess.CalledProcessError, OSError) as error:  # no npm/registry
            _BUILDS[key] = error
        else:
            out = tmp_path_factory.mktemp("published") / "site"
            sys.addaudithook(
                _record_writes
            )  # hooks stay for the session; this one acts only during the build
            _WRITES["active"] = True
            try:
                report = publish.publish(out)
            finally:
                _WRITES["active"] = False
            _BUILDS[key] = (out, report, list(_WRITES["paths"]))
    result = _BUILDS[key]
    if isinstance(result, Exception):
        pytest.skip(f"reveal.js/MathJax not available ({result}); run: npm ci --prefix book")
    return result


@pytest.fixture(scope="session")
def built(tmp_path_factory):
    return build_once(tmp_path_factory)


def test_build_writes_every_chapter_page_and_deck(built):
    site, report, _ = built
    assert report["warnings"] == ""
    assert (
        (site / "index.html").is_file()
        and (site / "search.html").is_file()
        and (site / ".nojekyll").is_file()
    )
    for path in publish.chapter_notebooks():
        assert (site / "notebooks" / f"{path.stem}.html").is_file()
        assert (site / "slides" / f"{path.stem}.slides.html").is_file()
    for target in publish.VENDOR_FILES.values():
        assert (site / publish.VENDOR_DIR / target).exists()


def test_build_leaves_the_committed_notebooks_unchanged(built):
    site, _, written = built  # every file the build opened for writing (Sphinx only sees a staged copy)
    assert any(path.startswith(os.path.realpath(site)) for path in written)
    notebooks = os.path.realpath(publish.NOTEBOOKS) + os.sep
    assert [path for path in written if path.startswith(notebooks)] == []


def test_decks_have_the_tagged_number_of_slides(built):
    site, report, _ = built
    for path in publish.chapter_notebooks():
        expected = publish.slide_count(publish.tag_for_slides(publish.read_notebook(path)))
        html = (site / "slides" / f"{path.stem}.slides.html").read_text(encoding="utf-8")
        assert report["slides"][path.stem] == expected
        assert html.count("<section") == 2 * expected, path.name
        assert 15 <= expected <= 120, f"{path.name}: {expected} slides"


def test_chapter_pages_link_colab_and_their_deck(built):
    site, _, _ = built
    for path in publish.chapter_notebooks():
        page = (site / "notebooks" / f"{path.stem}.html").read_text(encoding="utf-8")
        assert f'href="{COLAB.format(path.stem)}"' in page, path.name
        assert f'href="../slides/{path.stem}.slides.html"' in page
        assert publish.COLAB_BADGE_URL not in page


def test_built_pages_reference_nothing_remote(built):
    site, _, _ = built
    pages = sorted(site.rglob("*.html"))
    assert len(pages) >= 23  # index, search, genindex, ten chapters, ten decks
    loads = re.compile(
        r'<(?:script|link|img|iframe|source|video|audio)\b[^>]*?(?:src|href)="((?:https?:)?//[^"]+)"'
    )
    for page in pages:
        assert loads.findall(page.read_text(encoding="utf-8")) == [], page.relative_to(site)
    for css in site.rglob("*.css"):
        assert not re.search(r"url\(['\"]?(?:https?:)?//", css.read_text(encoding="utf-8")), css.relative_to(
            site
        )


def test_staged_sources_link_each_chapter_to_its_deck(tmp_path):
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    with_badge = notebook(
        new_markdown_cell(f"# 00 · A\n\n[![Open In Colab]({publish.COLAB_BADGE_URL})](https://c/a)\n\nText.")
    )
    nbformat.write(with_badge, str(notebooks / "00_a.ipynb"))
    nbformat.write(notebook(new_markdown_cell("# 01 · B\n\nNo badge.")), str(notebooks / "01_b.ipynb"))
    readme = tmp_path / "README.md"
    readme.write_text(
        "# Course\n\nIntro.\n\n## Chapters\n<!-- results-table:start -->\n| # | notebook |\n|---|---|\n"
        "| 00 | [a](notebooks/00_a.ipynb) |\n| 01 | [b](notebooks/01_b.ipynb) |\n<!-- results-table:end -->\n"
    )
    paths = publish.chapter_notebooks(notebooks)
    publish.stage_sources(tmp_path / "src", paths, readme)
    first = nbformat.read(str(tmp_path / "src" / "notebooks" / "00_a.ipynb"), as_version=4).cells[0].source
    assert (
        '](colab-badge.svg)](https://c/a) <a class="course-deck-link" href="../slides/00_a.slides.html">'
        in first
    )
    second = nbformat.read(str(tmp_path / "src" / "notebooks" / "01_b.ipynb"), as_version=4).cells[0].source
    assert second.endswith('href="../slides/01_b.slides.html">Slides of this chapter</a>')
    assert (tmp_path / "src" / "notebooks" / "colab-badge.svg").is_file()
    assert (tmp_path / "src" / "index.md").read_text().startswith("# Course\n\nIntro.")
    assert nbformat.read(str(notebooks / "00_a.ipynb"), as_version=4) == with_badge  # the source is untouched


def test_tagged_copies_for_rise(tmp_path, capsys):
    written = publish.write_tagged_notebooks(tmp_path / "rise", publish.chapter_notebooks()[:1])
    tagged = nbformat.read(str(written[0]), as_version=4)
    assert tagged.metadata["rise"]["theme"] == "white"  # RISE's default theme loads Google Fonts
    assert all("slide_type" in cell.metadata["slideshow"] for cell in tagged.cells)
    assert publish.slide_count(tagged) == publish.slide_count(
        publish.tag_for_slides(publish.read_notebook(publish.chapter_notebooks()[0]))
    )
    assert publish.main(["--tagged-notebooks", str(tmp_path / "cli")]) == 0
    assert len(list((tmp_path / "cli").glob("*.ipynb"))) == 10
    assert "00_setup_and_pytorch.ipynb" in capsys.readouterr().out
