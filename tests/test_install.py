"""Tests for course_utils.install: read the course's requirements and pip-install only missing ones."""

from __future__ import annotations

import runpy
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from course_utils import install

REPO = Path(__file__).resolve().parents[1]
BOGUS = "surely-not-a-real-package-xyz>=1.0"


# --- fixtures ------------------------------------------------------------------------------------------

@pytest.fixture
def no_pip(monkeypatch):
    """Fail the test if anything tries to run pip."""

    def forbidden(*args, **kwargs):
        pytest.fail(f"subprocess.call ran in a dry run: {args}")

    monkeypatch.setattr(subprocess, "call", forbidden)


@pytest.fixture
def pip_calls(monkeypatch):
    """Record subprocess.call instead of running pip; the recorded call returns 0."""
    calls = []

    def record(command, *args, **kwargs):
        calls.append(command)
        return 0

    monkeypatch.setattr(subprocess, "call", record)
    return calls


@pytest.fixture
def small_pyproject(tmp_path):
    path = tmp_path / "pyproject.toml"
    path.write_text(f'[project]\nname = "x"\ndependencies = ["numpy>=1.0", "{BOGUS}"]\n'
                    '[project.optional-dependencies]\ndev = ["pytest>=8"]\n', encoding="utf-8")
    return path


# --- requirement_name ----------------------------------------------------------------------------------

@pytest.mark.parametrize("requirement,name", [
    ("torch>=2.3", "torch"),
    ("open-clip-torch>=2.26", "open-clip-torch"),
    ("pkg[extra]>=1; python_version>'3'", "pkg"),
    ("  numpy", "numpy"),
    ("zope.interface==6.0", "zope.interface"),
    ("my_pkg @ https://example.invalid/my_pkg.whl", "my_pkg"),
])
def test_requirement_name(requirement, name):
    assert install.requirement_name(requirement) == name


@pytest.mark.parametrize("bad", ["", ">=2.3", "[extra]", "-e ."])
def test_requirement_name_rejects_non_requirements(bad):
    with pytest.raises(ValueError, match="not a requirement string"):
        install.requirement_name(bad)


# --- course_requirements -------------------------------------------------------------------------------

def test_course_requirements_reads_the_real_pyproject():
    requirements = install.course_requirements()
    names = [install.requirement_name(r) for r in requirements]
    assert "torch" in names and "torchvision" in names
    assert "pytest" not in names  # dev extras only on request


def test_course_requirements_never_pin_torch_or_torchvision():
    for requirement in install.course_requirements(extras=["dev"]):
        if install.requirement_name(requirement).lower() in ("torch", "torchvision"):
            assert "==" not in requirement, requirement
            assert "<" not in requirement, requirement  # an upper bound would downgrade Colab's torch too


def test_course_requirements_dev_extra_adds_test_tools():
    base = install.course_requirements()
    with_dev = install.course_requirements(extras=["dev"])
    added = {install.requirement_name(r) for r in with_dev[len(base):]}
    assert with_dev[:len(base)] == base
    assert {"pytest", "nbval"} <= added


def test_course_requirements_from_a_given_file(small_pyproject):
    assert install.course_requirements(small_pyproject) == ["numpy>=1.0", BOGUS]
    assert install.course_requirements(small_pyproject, extras=["dev", "nope"]) == ["numpy>=1.0", BOGUS, "pytest>=8"]


# --- missing_requirements ------------------------------------------------------------------------------

def test_missing_requirements_returns_only_uninstalled():
    requirements = ["torch>=2.3", "numpy", BOGUS, "pytest>=8", "other-bogus-pkg-abc[x]; python_version>'3'"]
    assert install.missing_requirements(requirements) == [BOGUS, "other-bogus-pkg-abc[x]; python_version>'3'"]


def test_missing_requirements_normalises_distribution_names():
    # open-clip-torch installs as open_clip_torch; both spellings count as installed.
    assert install.missing_requirements(["open-clip-torch>=2.26", "open_clip_torch", "Pillow"]) == []


def test_missing_requirements_ignores_version_constraints():
    # Installed but "too old" is left alone on purpose: never upgrade or downgrade what is there.
    assert install.missing_requirements(["numpy>=999"]) == []


def test_missing_requirements_empty_input():
    assert install.missing_requirements([]) == []


# --- command line ----------------------------------------------------------------------------------------

def test_main_dry_run_on_the_real_requirements_installs_nothing(no_pip, capsys):
    assert install.main(["--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "Missing:" in out or "already installed" in out


def test_main_dry_run_lists_missing_without_installing(monkeypatch, no_pip, small_pyproject, capsys):
    monkeypatch.setattr(install, "repo_root", lambda: small_pyproject.parent)
    assert install.main(["--dry-run"]) == 0
    assert capsys.readouterr().out.strip() == f"Missing: {BOGUS}"


def test_main_installs_exactly_the_missing_packages(monkeypatch, pip_calls, capsys):
    monkeypatch.setattr(install, "missing_requirements", lambda requirements: ["aaa>=1", "bbb[x]"])
    assert install.main([]) == 0
    assert pip_calls == [[sys.executable, "-m", "pip", "install", "-q", "aaa>=1", "bbb[x]"]]
    assert "Missing: aaa>=1, bbb[x]" in capsys.readouterr().out


def test_main_returns_pips_exit_status(monkeypatch):
    monkeypatch.setattr(install, "missing_requirements", lambda requirements: ["aaa"])
    monkeypatch.setattr(subprocess, "call", lambda command: 3)
    assert install.main([]) == 3


def test_main_passes_extras_through(monkeypatch, pip_calls, small_pyproject):
    monkeypatch.setattr(install, "repo_root", lambda: small_pyproject.parent)
    seen = []
    monkeypatch.setattr(install, "missing_requirements", lambda requirements: seen.append(requirements) or [])
    assert install.main(["--extra", "dev"]) == 0
    assert seen == [["numpy>=1.0", BOGUS, "pytest>=8"]]
    assert pip_calls == []


def test_main_with_nothing_missing_says_so_and_installs_nothing(monkeypatch, no_pip, capsys):
    monkeypatch.setattr(install, "missing_requirements", lambda requirements: [])
    assert install.main([]) == 0
    assert "All course packages are already installed." in capsys.readouterr().out


def test_module_main_guard_runs_a_dry_run(monkeypatch, no_pip, capsys):
    monkeypatch.setattr(sys, "argv", ["python -m course_utils.install", "--dry-run"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # "found in sys.modules" from re-running a module
        with pytest.raises(SystemExit) as info:
            runpy.run_module("course_utils.install", run_name="__main__")
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "Missing:" in out or "already installed" in out


def test_requirements_excluded_by_their_marker_are_not_missing():
    never = "surely-not-installed-pkg>=1; python_version < '3.0'"
    always = "surely-not-installed-pkg>=1; python_version >= '3.0'"
    assert install.applies_here("torch>=2.3")
    assert install.missing_requirements([never]) == []
    assert install.missing_requirements([always]) == [always]
