"""The built website and one deck in a real browser: headless Chromium (Debian's ``chromium``) driven by
Playwright's Python API, serving the session's build (tests/test_publish.py) from a local http.server.

Every request the browser makes is routed through :func:`route`: local ones are served, anything else is
recorded and aborted, and the tests fail on it. Screenshots of the landing page, a chapter page and a
slide are saved under build/test-artifacts/ (git-ignored). Without Chromium the tests skip and say so.
"""

import functools
import http.server
import os
import threading
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlsplit

import pytest
from test_publish import build_once  # one build per session, shared with tests/test_publish.py

from tools import publish

CHROMIUM = Path(os.environ.get("COURSE_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = Path(__file__).resolve().parents[1] / "build" / "test-artifacts"
CHAPTER = "06_vit_from_scratch"
SEARCH_TERM = "patch embedding"  # said in chapter 06's text
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason=f"no Chromium at {CHROMIUM}: the browser tests need Debian's chromium "
    "(apt-get install -y chromium) "
    "or COURSE_CHROMIUM=/path/to/chromium",
)
sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright missing: pip install -e '.[site]'")


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="session")
def site(tmp_path_factory):
    return build_once(tmp_path_factory)[0]


@pytest.fixture(scope="session")
def server(site):
    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(site))
    )
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}/"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="session")
def browser(tmp_path_factory):
    record = SimpleNamespace(local=[], external=[], errors=[])

    def route(route_):
        url = route_.request.url
        if urlsplit(url).hostname in ("127.0.0.1", "localhost"):
            record.local.append(url)
            route_.continue_()
        else:
            record.external.append(url)
            route_.abort()

    with sync_api.sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 800},
        )
        context.route("**/*", route)
        record.context = context
        yield record
        context.close()


@pytest.fixture
def page(browser):
    page = browser.context.new_page()
    page.on("pageerror", lambda error: browser.errors.append(str(error)))
    yield page
    page.close()


def open_page(page, url):
    page.goto(url, wait_until="load")
    page.wait_for_load_state("networkidle")


def wait_for_mathjax(page):
    page.wait_for_function("window.MathJax && MathJax.startup && MathJax.startup.promise")
    page.evaluate("MathJax.startup.promise")


def screenshot(page, name, **options):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), **options)


def test_landing_page_lists_all_ten_chapters(page, server, browser):
    open_page(page, server + "index.html")
    linked = set(
        page.eval_on_selector_all(
            "article a[href*='notebooks/']",
            "links => links.map(a => new URL(a.href).pathname.split('/').pop())",
        )
    )
    chapters = [path.stem for path in publish.chapter_notebooks()]
    assert len(chapters) == 10
    assert {f"{stem}.html" for stem in chapters} <= linked
    sidebar = page.eval_on_selector_all("nav.bd-links a", "links => links.map(a => a.textContent.trim())")
    assert sum(text[:2].isdigit() for text in sidebar) == 10
    screenshot(page, "landing.png", full_page=True)
    assert browser.errors == []


def test_chapter_page_shows_figures_math_and_the_colab_link(page, server, browser):
    open_page(page, server + f"notebooks/{CHAPTER}.html")
    wait_for_mathjax(page)
    figures = page.eval_on_selector_all(
        ".cell_output img",
        """images => images.map(image => {
        image.scrollIntoView();
        const box = image.getBoundingClientRect();
        return [image.complete && image.naturalWidth > 0, box.width, box.height];
    })""",
    )
    committed = publish.read_notebook(publish.NOTEBOOKS / f"{CHAPTER}.ipynb")
    expected = sum(publish.has_figure(cell) for cell in committed.cells if cell.cell_type == "code")
    assert len(figures) >= expected > 5
    assert all(loaded and width > 0 and height > 0 for loaded, width, height in figures)
    assert page.locator("article mjx-container").count() >= 3  # the three display equations, and more
    assert "$$" not in page.inner_text("article")
    colab = f"https://colab.research.google.com/github/open-cv-course/pixels-to-clip/blob/main/notebooks/{CHAPTER}.ipynb"
    badge = page.locator(f"article a[href='{colab}'] img")
    assert badge.count() == 1 and badge.bounding_box()["width"] > 0
    page.locator("article mjx-container[display='true']").first.scroll_into_view_if_needed()
    screenshot(page, "chapter.png")  # section 1: the attention equation and the first figure
    assert browser.errors == []


def test_search_finds_chapter_06(page, server, browser):
    open_page(page, server + "search.html?q=" + SEARCH_TERM.replace(" ", "+"))
    hit = page.wait_for_selector(f"#search-results a[href*='{CHAPTER}.html']", timeout=20_000)
    assert "Vision Transformers" in hit.inner_text()
    assert browser.errors == []


def test_deck_has_its_slides_moves_on_a_key_and_shows_a_figure(page, server, browser):
    open_page(page, server + f"slides/{CHAPTER}.slides.html")
    page.wait_for_function("window.Reveal && Reveal.isReady()")
    tagged = publish.tag_for_slides(publish.read_notebook(publish.NOTEBOOKS / f"{CHAPTER}.ipynb"))
    assert page.evaluate("Reveal.getTotalSlides()") == publish.slide_count(tagged)
    assert page.evaluate("Reveal.getIndices().h") == 0
    page.keyboard.press("ArrowRight")
    page.wait_for_function("Reveal.getIndices().h === 1")
    wait_for_mathjax(page)
    assert page.locator(".reveal mjx-container").count() >= 3
    assert page.locator("aside.notes").count() > 10  # the prose, as speaker notes
    first_figure = page.evaluate("""Reveal.getHorizontalSlides().findIndex(
        slide => slide.querySelector('.jp-RenderedImage img') !== null)""")
    assert first_figure > 1
    page.evaluate(f"Reveal.slide({first_figure})")
    page.wait_for_function(f"Reveal.getIndices().h === {first_figure}")
    page.wait_for_timeout(800)  # the slide transition
    box = page.locator(".reveal .slides section.present .jp-RenderedImage img").first.bounding_box()
    assert box["width"] > 300 and box["height"] > 100
    screenshot(page, "slide.png")
    assert browser.errors == []


def test_nothing_was_requested_from_outside_the_local_server(browser):
    assert browser.local, "the browser tests made no requests at all"
    assert browser.external == []
