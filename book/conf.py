"""Sphinx configuration of the course website (the Jupyter Book 1 stack: Sphinx + MyST-NB + the book theme).

Do not run sphinx-build on this folder by hand: ``python -m tools.publish`` stages the sources (the
landing page generated from README.md, cleaned in-memory copies of notebooks/*.ipynb), builds with
``-c book`` and adds the locally served MathJax and reveal.js. Nothing is executed and nothing is fetched.
"""

project = "Pixels to CLIP"
author = "The open computer-vision course"
copyright = "the course authors; code MIT"

extensions = ["myst_nb"]
root_doc = "index"
exclude_patterns = ["_build", "**/.ipynb_checkpoints"]

# Notebooks are shown with their committed full-mode outputs; they are never executed here.
nb_execution_mode = "off"
nb_output_stderr = "remove"  # warnings and progress-bar noise, not results
nb_ipywidgets_js = {}  # no widget manager from a CDN (the builder drops widget state anyway)
nb_merge_streams = True
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "html_image"]
myst_dmath_double_inline = True  # "… as follows: $$x = y$$" inside a paragraph is display math
myst_heading_anchors = 3
suppress_warnings = ["mystnb.unknown_mime_type", "myst.header"]

# MathJax 3 from npm, copied by the builder into _static/course-vendor/ (relative to _static).
mathjax_path = "course-vendor/mathjax/tex-chtml.js"

html_theme = "sphinx_book_theme"
html_title = "Pixels to CLIP"
html_static_path = ["_static"]
html_css_files = ["course.css"]
html_show_sourcelink = False
html_last_updated_fmt = None
html_theme_options = {
    "repository_url": "https://github.com/open-cv-course/pixels-to-clip",
    "repository_branch": "main",
    "path_to_docs": "",
    "use_repository_button": True,
    "launch_buttons": {"colab_url": "https://colab.research.google.com"},
    "home_page_in_toc": True,
    "show_navbar_depth": 1,
}
html_context = {"default_mode": "light"}
