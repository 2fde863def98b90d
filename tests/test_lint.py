"""The notebooks are code too: the linter reads them (pyflakes' checks and the 110-character line limit)."""

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Explicit rules, so the result does not depend on the installed ruff's defaults: syntax errors, pyflakes
# (undefined names, unused imports and variables) and lines over 110 characters.
NOTEBOOK_RULES = "E9,E501,F"


def test_notebooks_pass_the_linter():
    ruff = shutil.which("ruff")
    if ruff is None:
        pytest.skip("ruff is not installed (pip install -e '.[dev]')")
    notebooks = sorted(str(path) for path in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    assert notebooks, "no notebooks found"
    result = subprocess.run([ruff, "check", "--isolated", "--select", NOTEBOOK_RULES, "--line-length", "110",
                             "--output-format", "concise", *notebooks], cwd=ROOT, capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0, result.stdout + result.stderr
