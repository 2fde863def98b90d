"""Build the course's slides (one reveal.js deck per chapter) and website from the committed notebooks.

    python -m tools.publish                  # slides and website into build/site/ (git-ignored)
    python -m tools.publish --out DIR        # somewhere else
    python -m tools.publish --slides-only    # only the decks (seconds), e.g. while tuning a chapter's slides
    python -m tools.publish --tagged-notebooks build/rise   # tagged copies to present live with RISE

Serve the result with ``python -m http.server -d build/site`` and open http://localhost:8000 (the
website) or http://localhost:8000/slides/06_vit_from_scratch.slides.html (a deck; ``S`` opens the
speaker view). Nothing is executed: pages and decks show the notebooks' committed full-mode outputs.
Nothing is fetched either: reveal.js and MathJax come from npm (``book/package.json``, installed with
``npm ci --prefix book`` when missing) and are served from the site's own ``_static/course-vendor/``.

The notebooks in ``notebooks/`` are never modified. Each is read, cleaned and tagged *in memory*:

* cleaning (site and decks): the Colab badge becomes a local image (the link stays), widget state and
  widget views are dropped (their text fallback stays), so no page needs a widget manager from a CDN;
* tagging (decks only): :func:`tag_for_slides` sets every cell's ``slideshow.slide_type``, following the
  convention in :data:`SLIDE_RULES`, so a deck shows the ideas, key code and figures and leaves the
  plumbing out, and the prose becomes speaker notes.

The website is the Jupyter Book 1 stack (Sphinx, MyST-NB, sphinx-book-theme) driven directly with the
configuration in ``book/conf.py``; the ``jupyter-book`` 1.x command itself is not used because it pins
``myst-parser`` 3, which would downgrade ``markdown-it-py`` 4 in the course environment. Its landing page is
generated from README.md at build time (title, introduction and the chapter table), so there is no second
copy to maintain.
"""

from __future__ import annotations

import argparse
import ast
import base64
import copy
import html
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parents[1]
BOOK = REPO / "book"
NOTEBOOKS = REPO / "notebooks"
DEFAULT_OUT = REPO / "build" / "site"

COLAB_BADGE_URL = "https://colab.research.google.com/assets/colab-badge.svg"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
VENDOR_DIR = "_static/course-vendor"  # inside the built site
SLIDES_DIR = "slides"
BADGE_FILE = "colab-badge.svg"  # in book/

# What the builder copies out of book/node_modules: source path → path under _static/course-vendor/.
VENDOR_FILES = {
    "reveal.js/dist/reveal.js": "reveal.js/dist/reveal.js",
    "reveal.js/dist/reveal.css": "reveal.js/dist/reveal.css",
    "reveal.js/dist/theme/white.css": "reveal.js/dist/theme/white.css",  # other themes load Google fonts
    "reveal.js/dist/theme/fonts/source-sans-pro": "reveal.js/dist/theme/fonts/source-sans-pro",
    "reveal.js/plugin/notes": "reveal.js/plugin/notes",
    "reveal.js/LICENSE": "reveal.js/LICENSE",
    "mathjax/es5/tex-chtml.js": "mathjax/tex-chtml.js",
    "mathjax/es5/input/tex/extensions": "mathjax/input/tex/extensions",  # loaded on demand (\boldsymbol …)
    "mathjax/es5/output/chtml/fonts/woff-v2": "mathjax/output/chtml/fonts/woff-v2",
    "mathjax/es5/ui": "mathjax/ui",
    "mathjax/es5/a11y": "mathjax/a11y",  # the menu's accessibility options
    "mathjax/es5/sre": "mathjax/sre",
    "mathjax/LICENSE": "mathjax/LICENSE",
}

# ---------------------------------------------------------------------------------------------------
# The slide convention
# ---------------------------------------------------------------------------------------------------
MAX_SHOWN_CODE_LINES = 15  # longer code is shown only through its output, or skipped when it has none
SETUP_HEADING = re.compile(r"^#{1,2}\s+(\d+\s*·\s*)?setup\b", re.IGNORECASE)
SLIDE_HEADING_LEVEL = 3  # headings #, ## and ### start a slide; deeper ones stay on the current slide
FIGURE_MIMES = ("image/png", "image/jpeg", "image/svg+xml", "image/gif")
# RISE's own settings for the tagged copies: the theme whose fonts ship with reveal.js (its default, "simple",
# loads Google Fonts), and scrolling for long slides.
RISE_SETTINGS = {"theme": "white", "scroll": True, "transition": "slide"}

SLIDE_RULES = f"""\
Markdown cells are split into their top-level blocks:
  - a heading of level 1-{SLIDE_HEADING_LEVEL} starts a new slide;
  - tables, lists, code blocks, display math ($$) and images are shown on the current slide;
  - prose paragraphs and quotes become speaker notes: on the slide they introduce when the cell
    is followed by a code cell, otherwise on the slide they follow.
Code cells:
  - the Setup section, Colab installs, import-only cells and course_utils.setup(...) are skipped;
  - a cell that draws a figure gets a slide with the figure only (its code stays in the notebook);
  - a cell with other output gets a slide with code and output, or only the output when its code
    is longer than {MAX_SHOWN_CODE_LINES} lines;
  - a cell without output is key code (a slide) up to {MAX_SHOWN_CODE_LINES} lines; longer helper
    code is skipped;
  - a code cell right after a heading that has nothing else on its slide joins that slide;
  - stderr (warnings, progress bars) and widget outputs are left out.
"""


class PublishError(RuntimeError):
    """Something the build needs is missing; the message says what and how to get it."""


# ---------------------------------------------------------------------------------------------------
# Cleaning: what both the website and the decks get
# ---------------------------------------------------------------------------------------------------
def colab_badge_data_uri() -> str:
    """The course's own 'Open in Colab' badge (book/colab-badge.svg) as a data: URI, so no page fetches it."""
    svg = (BOOK / BADGE_FILE).read_bytes()
    return "data:image/svg+xml;base64," + base64.b64encode(svg).decode("ascii")


def clean_notebook(nb, *, badge: str | None = None, drop_widget_outputs: bool = False):
    """A copy of ``nb`` that a static page can show without any CDN.

    The Colab badge image becomes ``badge`` (default: the course's badge as a data: URI; the link to
    Colab stays), the widget state in the
    notebook metadata is dropped, and so is every widget view in the outputs: an output keeps its
    ``text/plain`` fallback (a tqdm bar's final line), or disappears when ``drop_widget_outputs``.
    """
    nb = copy.deepcopy(nb)
    nb.metadata.pop("widgets", None)
    badge = badge or colab_badge_data_uri()
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cell.source = cell.source.replace(COLAB_BADGE_URL, badge)
        elif cell.cell_type == "code":
            outputs = []
            for output in cell.get("outputs", []):
                data = output.get("data")
                if data is not None and WIDGET_VIEW in data:
                    if drop_widget_outputs:
                        continue
                    data.pop(WIDGET_VIEW)
                    if not data:
                        continue
                outputs.append(output)
            cell.outputs = outputs
    return nb


def read_notebook(path: Path):
    """Read a committed notebook (never written back)."""
    return nbformat.read(str(path), as_version=4)


def chapter_title(nb, fallback: str) -> str:
    """The text of the notebook's first level-1 heading."""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            match = re.search(r"^#\s+(.+)$", cell.source, re.MULTILINE)
            if match:
                return match.group(1).strip()
    return fallback


# ---------------------------------------------------------------------------------------------------
# Tagging: the deck's roles, applied to an in-memory copy
# ---------------------------------------------------------------------------------------------------
def markdown_blocks(source: str) -> list[tuple[str, str]]:
    """The top-level blocks of a markdown cell as (kind, text): heading, paragraph, bullet_list, table …"""
    from markdown_it import MarkdownIt

    parser = MarkdownIt("commonmark").enable("table")
    lines = source.splitlines()
    blocks = []
    for token in parser.parse(source):
        if token.level != 0 or token.nesting == -1 or token.map is None:
            continue
        start, end = token.map
        kind = token.type.removesuffix("_open")
        blocks.append((kind, "\n".join(lines[start:end]).strip("\n")))
    return blocks


def heading_level(block: tuple[str, str]) -> int:
    """1 for '# …', 2 for '## …'; 0 when the block is not an ATX heading."""
    kind, text = block
    if kind != "heading":
        return 0
    match = re.match(r"^(#{1,6})\s", text)
    return len(match.group(1)) if match else 1


def is_visible_block(block: tuple[str, str]) -> bool:
    """Whether a markdown block belongs on the slide (True) or in the speaker notes (False)."""
    kind, text = block
    if kind in ("heading", "bullet_list", "ordered_list", "table", "fence", "code_block", "html_block"):
        return True
    return kind == "paragraph" and ("$$" in text or "![" in text or "<img" in text)


def _is_import_only(source: str) -> bool:
    try:
        tree = ast.parse(source)
    except SyntaxError:  # IPython magics or shell escapes: not plain imports
        return False
    return bool(tree.body) and all(isinstance(node, (ast.Import, ast.ImportFrom)) for node in tree.body)


def is_plumbing(source: str) -> bool:
    """Setup and install cells, imports only, ``course_utils.setup(...)`` and empty cells."""
    lines = [
        line.strip() for line in source.splitlines() if line.strip() and not line.strip().startswith("#")
    ]
    if not lines:
        return True
    if "google.colab" in source or "course_utils.setup(" in source:
        return True
    if any(line.startswith(("!", "%pip", "%conda")) for line in lines):
        return True
    return _is_import_only(source)


def has_figure(cell) -> bool:
    """Whether a code cell's outputs include an image."""
    return any(mime in output.get("data", {}) for output in cell.get("outputs", []) for mime in FIGURE_MIMES)


def code_role(cell) -> str:
    """'skip', 'figure' (output only), 'output' (output only, long code) or 'code' (code and output)."""
    if is_plumbing(cell.source):
        return "skip"
    if has_figure(cell):
        return "figure"
    long_code = len(cell.source.splitlines()) > MAX_SHOWN_CODE_LINES
    if cell.get("outputs"):
        return "output" if long_code else "code"
    return "skip" if long_code else "code"


def _role(cell, slide_type: str, *, hide_code: bool = False):
    cell.metadata["slideshow"] = {"slide_type": slide_type}
    if hide_code:
        cell.metadata["transient"] = {"remove_source": True}
    return cell


def _markdown_cell(source: str, slide_type: str, cell_id: str):
    cell = nbformat.v4.new_markdown_cell(source)
    cell["id"] = cell_id[:64]
    return _role(cell, slide_type)


def tag_for_slides(nb):
    """A new notebook whose cells carry the deck roles of :data:`SLIDE_RULES` (``nb`` is not changed).

    Markdown cells may be split into several cells (slide content and speaker notes), and notes move to
    the slide they belong to; code cells keep their ids. Every cell ends up with
    ``metadata.slideshow.slide_type`` in slide / - / notes / skip, and a figure's or long cell's code is
    hidden with ``metadata.transient.remove_source``.
    """
    nb = clean_notebook(nb, drop_widget_outputs=True)
    cells = list(nb.cells)
    tagged = []
    pending_notes = []  # prose waiting for the slide it introduces
    in_setup = False
    have_slide = False  # a slide has been opened
    slide_has_body = False  # the current slide shows more than its heading

    def flush_notes():
        tagged.extend(pending_notes)
        pending_notes.clear()

    for index, cell in enumerate(cells):
        next_is_code = index + 1 < len(cells) and cells[index + 1].cell_type == "code"
        cell_id = str(cell.get("id") or f"cell{index}")
        if cell.cell_type == "markdown":
            blocks = markdown_blocks(cell.source)
            level = heading_level(blocks[0]) if blocks else 0
            if 1 <= level <= 2:
                in_setup = bool(SETUP_HEADING.match(blocks[0][1]))
            if in_setup:
                tagged.append(_role(copy.deepcopy(cell), "skip"))
                continue
            # Group consecutive blocks with the same fate; a slide-level heading always opens a group.
            groups = []  # [visible, starts_slide, texts]
            for block in blocks:
                visible = is_visible_block(block)
                starts = visible and 1 <= heading_level(block) <= SLIDE_HEADING_LEVEL
                if groups and not starts and groups[-1][0] == visible:
                    groups[-1][2].append(block[1])
                else:
                    groups.append([visible, starts, [block[1]]])
            if not any(visible for visible, _, _ in groups):
                note = _markdown_cell(cell.source, "notes", cell_id)
                if next_is_code or not have_slide:
                    pending_notes.append(note)  # introduces the code cell that follows
                else:
                    tagged.append(note)  # comments on the slide before
                continue
            for part, (visible, starts, texts) in enumerate(groups):
                part_id = f"{cell_id}-{part}"
                source = "\n\n".join(texts)
                if not visible:
                    note = _markdown_cell(source, "notes", part_id)
                    (tagged if have_slide else pending_notes).append(note)
                    continue
                new_slide = starts or not have_slide
                tagged.append(_markdown_cell(source, "slide" if new_slide else "-", part_id))
                have_slide = True
                slide_has_body = not starts if new_slide else True
                flush_notes()
        elif cell.cell_type == "code":
            role = "skip" if in_setup else code_role(cell)
            if role == "skip":
                tagged.append(_role(copy.deepcopy(cell), "skip"))
                continue
            shown = copy.deepcopy(cell)
            shown.outputs = [
                o for o in shown.outputs if not (o.output_type == "stream" and o.name == "stderr")
            ]
            joins_heading = have_slide and not slide_has_body
            tagged.append(
                _role(shown, "-" if joins_heading else "slide", hide_code=role in ("figure", "output"))
            )
            have_slide = slide_has_body = True
            flush_notes()
        else:  # raw cells are not shown
            tagged.append(_role(copy.deepcopy(cell), "skip"))
    flush_notes()
    nb.cells = tagged
    return nb


def slide_count(tagged_nb) -> int:
    """How many slides reveal.js will show for a tagged notebook (nbconvert promotes the first shown cell)."""
    types = [cell.metadata.get("slideshow", {}).get("slide_type", "-") for cell in tagged_nb.cells]
    shown = [slide_type for slide_type in types if slide_type not in ("notes", "skip")]
    if not shown:
        return 0
    return shown.count("slide") + (shown[0] != "slide")


# ---------------------------------------------------------------------------------------------------
# Building
# ---------------------------------------------------------------------------------------------------
def chapter_notebooks(notebook_dir: Path = NOTEBOOKS) -> list[Path]:
    """The numbered chapter notebooks, in order."""
    paths = sorted(notebook_dir.glob("[0-9][0-9]_*.ipynb"))
    if not paths:
        raise PublishError(f"no chapter notebooks (NN_*.ipynb) in {notebook_dir}")
    return paths


def ensure_vendor(node_modules: Path = BOOK / "node_modules") -> Path:
    """book/node_modules with reveal.js and MathJax; runs ``npm ci --prefix book`` when they are missing."""
    wanted = [node_modules / source for source in VENDOR_FILES]
    if all(path.exists() for path in wanted):
        return node_modules
    npm = shutil.which("npm")
    if npm is None:
        raise PublishError(
            f"reveal.js and MathJax are missing from {node_modules}, and npm is not installed. "
            "Install Node.js "
            "(with npm), then run: npm ci --prefix book"
        )
    print("installing reveal.js and MathJax from the npm registry: npm ci --prefix book", flush=True)
    subprocess.run([npm, "ci", "--prefix", str(node_modules.parent), "--no-audit", "--no-fund"], check=True)
    missing = [str(path) for path in wanted if not path.exists()]
    if missing:
        raise PublishError(f"npm ci finished but these files are still missing: {missing}")
    return node_modules


def copy_vendor(site: Path, node_modules: Path) -> None:
    """Copy the served parts of reveal.js and MathJax into ``site/_static/course-vendor/``."""
    target_root = site / VENDOR_DIR
    for source, target in VENDOR_FILES.items():
        source_path, target_path = node_modules / source, target_root / target
        target_path.parent.mkdir(parents=True, exist_ok=True)
        if source_path.is_dir():
            shutil.copytree(source_path, target_path, dirs_exist_ok=True)
        else:
            shutil.copy2(source_path, target_path)


def deck_html(tagged_nb, title: str, vendor_url: str) -> str:
    """One reveal.js deck as a standalone HTML page that loads reveal.js and MathJax from ``vendor_url``."""
    from nbconvert import SlidesExporter

    exporter = SlidesExporter(
        extra_template_basedirs=[str(BOOK / "templates")], template_name="course_reveal"
    )
    exporter.reveal_url_prefix = f"{vendor_url}/reveal.js"
    exporter.mathjax_url = f"{vendor_url}/mathjax/tex-chtml.js"
    exporter.reveal_theme = "white"
    exporter.reveal_number = "c/t"
    exporter.exclude_input_prompt = True
    exporter.exclude_output_prompt = True
    body, _ = exporter.from_notebook_node(tagged_nb, resources={"metadata": {"name": title}})
    return body


def build_decks(site: Path, notebooks: list[Path]) -> dict[str, int]:
    """Write ``site/slides/<chapter>.slides.html`` for every notebook; returns slides per deck."""
    out = site / SLIDES_DIR
    out.mkdir(parents=True, exist_ok=True)
    counts = {}
    for path in notebooks:
        tagged = tag_for_slides(read_notebook(path))
        title = chapter_title(tagged, path.stem)
        page = deck_html(tagged, title, vendor_url=f"../{VENDOR_DIR}")
        (out / f"{path.stem}.slides.html").write_text(page, encoding="utf-8")
        counts[path.stem] = slide_count(tagged)
    return counts


def write_tagged_notebooks(out: Path, notebooks: list[Path]) -> list[Path]:
    """Tagged copies of the chapters for presenting live with RISE (``jupyterlab-rise``), which reads the
    same ``slideshow`` roles from the notebook: open them in JupyterLab and press the RISE button. They are
    build outputs like the decks; edit the notebooks in notebooks/, never these.
    """
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for path in notebooks:
        tagged = tag_for_slides(read_notebook(path))
        tagged.metadata["rise"] = RISE_SETTINGS
        target = out / path.name
        nbformat.write(tagged, str(target))
        written.append(target)
    return written


def landing_page(readme: str, notebooks: list[Path]) -> str:
    """The website's index page (MyST markdown) from README.md: title, introduction, chapter table, decks."""
    lines = readme.splitlines()
    title_at = next((i for i, line in enumerate(lines) if line.startswith("# ")), None)
    if title_at is None:
        raise PublishError("README.md has no '# ' title line")
    intro_end = next((i for i in range(title_at + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    intro = "\n".join(lines[title_at + 1 : intro_end]).strip()
    start = next((i for i, line in enumerate(lines) if "results-table:start" in line), None)
    end = next((i for i, line in enumerate(lines) if "results-table:end" in line), None)
    if start is None or end is None or end <= start:
        raise PublishError("README.md has no chapter table between <!-- results-table:start/end --> markers")
    table = "\n".join(line for line in lines[start + 1 : end] if line.startswith("|"))
    missing = [path.name for path in notebooks if f"notebooks/{path.name}" not in table]
    if missing:
        raise PublishError(f"README.md's chapter table does not link these notebooks: {missing}")
    decks = []
    for path in notebooks:
        title = html.escape(chapter_title(read_notebook(path), path.stem))
        decks.append(f'<li><a href="{SLIDES_DIR}/{path.stem}.slides.html">{title}</a></li>')
    decks = "\n".join(decks)
    toctree = "\n".join(f"notebooks/{path.stem}" for path in notebooks)
    return f"""{lines[title_at]}

{intro}

## Chapters

{table}

Every chapter page shows the notebook with the outputs of its committed full-mode run; its
**Open in Colab** badge runs it.

## Slides

One reveal.js deck per chapter, built from the same notebooks (arrow keys move, `S` opens the speaker
notes, `F` goes full screen):

<ul class="course-decks">
{decks}
</ul>

```{{toctree}}
:hidden:
:maxdepth: 1

{toctree}
```
"""


def stage_sources(src: Path, notebooks: list[Path], readme: Path = REPO / "README.md") -> None:
    """Write the website's sources: index.md from the README and cleaned copies of the notebooks."""
    (src / "notebooks").mkdir(parents=True, exist_ok=True)
    shutil.copy2(BOOK / BADGE_FILE, src / "notebooks" / BADGE_FILE)
    (src / "index.md").write_text(
        landing_page(readme.read_text(encoding="utf-8"), notebooks), encoding="utf-8"
    )
    for path in notebooks:
        nb = clean_notebook(read_notebook(path), badge=BADGE_FILE)  # MyST takes no data:image/svg URIs
        deck = f"../{SLIDES_DIR}/{path.stem}.slides.html"
        link = f'<a class="course-deck-link" href="{deck}">Slides of this chapter</a>'
        first = nb.cells[0]
        if first.cell_type == "markdown":  # next to the Colab badge, or at the end of the title cell
            badge = re.compile(r"(\[!\[[^\]]*\]\(" + re.escape(BADGE_FILE) + r"\)\]\([^)]*\))")
            first.source, found = badge.subn(
                lambda match, link=link: f"{match.group(1)} {link}", first.source, count=1
            )
            if not found:
                first.source += f"\n\n{link}"
        nbformat.write(nb, str(src / "notebooks" / path.name))


def build_site(site: Path, notebooks: list[Path], *, jobs: str = "auto") -> str:
    """Run Sphinx on freshly staged sources into ``site``; returns Sphinx's warnings (empty when clean)."""
    with tempfile.TemporaryDirectory(prefix="course-site-src-") as tmp:
        src = Path(tmp) / "src"
        stage_sources(src, notebooks)
        warnings = Path(tmp) / "warnings.txt"
        command = [
            sys.executable,
            "-m",
            "sphinx",
            "-b",
            "html",
            "-q",
            "-c",
            str(BOOK),
            "-j",
            jobs,
            "-d",
            str(Path(tmp) / "doctrees"),
            "-w",
            str(warnings),
            str(src),
            str(site),
        ]
        result = subprocess.run(command, check=False, capture_output=True, text=True)
        if result.returncode != 0:
            raise PublishError(f"sphinx-build failed ({result.returncode}):\n{result.stderr[-4000:]}")
        return warnings.read_text(encoding="utf-8") if warnings.exists() else ""


def publish(
    out: Path = DEFAULT_OUT, *, slides_only: bool = False, notebooks: list[Path] | None = None
) -> dict:
    """Build everything into ``out``; returns timings, slides per deck and Sphinx's warnings."""
    notebooks = notebooks or chapter_notebooks()
    node_modules = ensure_vendor()
    out = Path(out)
    report = {"out": str(out), "warnings": ""}
    if out.exists() and any(out.iterdir()) and not (out / ".nojekyll").exists():
        raise PublishError(f"refusing to build into {out}: it is not empty and not a previous build")
    if out.exists() and not slides_only:
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    if not slides_only:
        started = time.perf_counter()
        report["warnings"] = build_site(out, notebooks)
        report["site_seconds"] = round(time.perf_counter() - started, 1)
    copy_vendor(out, node_modules)
    (out / ".nojekyll").write_text("")  # GitHub Pages: serve _static/ as it is
    started = time.perf_counter()
    report["slides"] = build_decks(out, notebooks)
    report["slides_seconds"] = round(time.perf_counter() - started, 1)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.publish", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT})"
    )
    parser.add_argument("--slides-only", action="store_true", help="build only the decks")
    parser.add_argument("--rules", action="store_true", help="print the slide convention and exit")
    parser.add_argument(
        "--tagged-notebooks",
        type=Path,
        metavar="DIR",
        help="only write the chapters with their slide roles to DIR, to present live with RISE",
    )
    args = parser.parse_args(argv)
    if args.rules:
        print(SLIDE_RULES)
        return 0
    if args.tagged_notebooks:
        for path in write_tagged_notebooks(args.tagged_notebooks, chapter_notebooks()):
            print(path)
        return 0
    try:
        report = publish(args.out, slides_only=args.slides_only)
    except PublishError as error:
        print(f"publish: {error}", file=sys.stderr)
        return 1
    if report["warnings"]:
        print(report["warnings"], file=sys.stderr)
    for name, count in report["slides"].items():
        print(f"{name}: {count} slides")
    if "site_seconds" in report:
        print(f"website built in {report['site_seconds']} s")
    print(f"{len(report['slides'])} decks built in {report['slides_seconds']} s")
    print(f"open: python -m http.server -d {report['out']}  →  http://localhost:8000")
    return 0


if __name__ == "__main__":
    sys.exit(main())
