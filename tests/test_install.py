"""Tests for course_utils.install: read the course's requirements and pip-install only missing ones."""

from __future__ import annotations

import runpy
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from course_utils import config, install

REPO = Path(__file__).resolve().parents[1]
BOGUS = "surely-not-a-real-package-xyz>=1.0"


# --- fixtures ------------------------------------------------------------------------------------------

@pytest.fixture
def no_pip(monkeypatch):
    """Fail the test if anything tries to run pip."""

    def forbidden(*args, **kwargs):
        pytest.fail(f"pip ran in a dry run: {args}")

    monkeypatch.setattr(subprocess, "call", forbidden)
    monkeypatch.setattr(subprocess, "run", forbidden)


class FakePip:
    """Stands in for subprocess.run: records each pip command (and the constraints file it was given, read
    while it still exists) and answers with the next queued (returncode, stdout, stderr), else success."""

    def __init__(self):
        self.commands, self.constraints, self.answers = [], [], []

    def __call__(self, command, *args, **kwargs):
        self.commands.append(command)
        if "-c" in command:
            self.constraints.append(Path(command[command.index("-c") + 1]).read_text(encoding="utf-8"))
        returncode, stdout, stderr = self.answers.pop(0) if self.answers else (0, "", "")
        return subprocess.CompletedProcess(command, returncode, stdout, stderr)


@pytest.fixture
def pip_calls(monkeypatch):
    """Record pip's commands instead of running pip (see FakePip)."""
    fake = FakePip()
    monkeypatch.setattr(subprocess, "run", fake)
    return fake


def pins(text):
    """{name: version} from a constraints file of name==version lines."""
    return dict(line.split("==", 1) for line in text.splitlines())


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


# --- floor_pins (the floors track's constraints) --------------------------------------------------------
def test_floor_pins_pin_every_floor_and_skip_the_rest():
    requirements = ["numpy>=2.0", "torch>=2.10,<3", "tqdm", "pillow>=9,>=10.1", "ruff>=0.6; python_version < '3'",
                    "open_clip_torch>=2.29"]
    assert install.floor_pins(requirements) == ["numpy==2.0", "torch==2.10", "pillow==10.1", "open_clip_torch==2.29"]


def test_floor_pins_cover_every_floored_course_requirement():
    requirements = install.course_requirements(extras=["dev"])
    pinned = {install.requirement_name(pin) for pin in install.floor_pins(requirements)}
    floored = {install.requirement_name(r) for r in requirements if ">=" in r and install.applies_here(r)}
    assert pinned == floored and "gradio" in pinned


def test_the_floors_track_can_read_the_pins_before_numpy_is_installed():
    """.ci/tracks/floors.sh runs install.py as a file in a venv that has only packaging: no package imports."""
    script = (f"import runpy, sys; sys.modules['numpy'] = None; from pathlib import Path; "
              f"ns = runpy.run_path({install.__file__!r}); "
              f"print(ns['floor_pins'](ns['course_requirements'](Path({str(config.repo_root())!r}) / 'pyproject.toml', "
              f"['dev'])))")
    printed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert printed.strip() == str(install.floor_pins(install.course_requirements(extras=["dev"])))


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


def test_jupyterlab_is_for_local_setups_only():
    core = {install.requirement_name(r) for r in install.course_requirements()}
    dev = {install.requirement_name(r) for r in install.course_requirements(extras=["dev"])}
    assert "jupyterlab" not in core  # Colab's setup cell installs the core only
    assert "jupyterlab" in dev and "course_utils" not in dev  # dev pulls in [local], expanded


def test_no_floor_is_above_what_colab_ships():
    """Colab's own releases must satisfy the course's core floors, or its setup cell complains on every chapter."""
    from packaging.requirements import Requirement

    colab = {"ipywidgets": "7.7.1", "numpy": "2.1.3", "pandas": "2.2.3", "scikit-image": "0.25.2", "torch": "2.11.0",
             "torchvision": "0.26.0", "opencv-python": "5.0.0.93", "transformers": "5.15.0", "diffusers": "0.39.0",
             "timm": "1.0.28", "gradio": "6.24.0"}
    for line in install.course_requirements():
        requirement = Requirement(line)
        if requirement.name in colab:
            assert requirement.specifier.contains(colab[requirement.name]), line


def test_an_extra_that_names_the_course_itself_is_expanded(tmp_path):
    path = tmp_path / "pyproject.toml"
    path.write_text('[project]\nname = "My_Course"\ndependencies = ["numpy"]\n[project.optional-dependencies]\n'
                    'dev = ["pytest", "my-course[local,gpu]", "my_course"]\nlocal = ["jupyterlab", "my-course[dev]"]\n'
                    'gpu = ["cupy"]\n', encoding="utf-8")
    assert install.course_requirements(path, extras=["dev"]) == ["numpy", "pytest", "jupyterlab", "cupy"]
    assert install.course_requirements(path, extras=["local"]) == ["numpy", "jupyterlab", "pytest", "cupy"]


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
    monkeypatch.setattr(config, "repo_root", lambda: small_pyproject.parent)
    assert install.main(["--dry-run"]) == 0
    assert capsys.readouterr().out.strip() == f"Missing: {BOGUS}"


def test_main_installs_exactly_the_missing_packages_with_everything_installed_pinned(monkeypatch, pip_calls, capsys):
    monkeypatch.setattr(install, "missing_requirements", lambda requirements: ["aaa>=1", "bbb[x]"])
    assert install.main([]) == 0
    [command] = pip_calls.commands
    assert command[:5] == [sys.executable, "-m", "pip", "install", "-q"]
    assert command[5] == "-c" and command[7:] == ["aaa>=1", "bbb[x]"]
    assert not Path(command[6]).exists(), "the constraints file is temporary"
    assert pins(pip_calls.constraints[0]) == install.installed_distributions()
    assert "Missing: aaa>=1, bbb[x]" in capsys.readouterr().out


def test_the_constraints_file_pins_every_installed_distribution_to_its_version():
    from importlib import metadata

    pinned = pins(install.constraints_text(install.installed_distributions()))
    for distribution in metadata.distributions():
        name = install.canonical(distribution.metadata["Name"])
        assert pinned[name] == metadata.version(name), name  # the version Python imports, exactly
    import torch

    assert pinned["torch"] == torch.__version__.split("+")[0] or pinned["torch"] == torch.__version__
    assert all(requirement.count("==") == 1 for requirement in install.constraints_text({"a": "1", "b": "2"}).split())


def test_installed_distributions_skips_unpinnable_and_shadowed_ones(monkeypatch):
    class Dist:
        def __init__(self, name, version):
            self.metadata, self.version = {"Name": name}, version

    found = [Dist("Foo_Bar", "1.0"), Dist("foo-bar", "9.9"), Dist("legacy", "not a version"), Dist(None, "1")]
    monkeypatch.setattr(install.metadata, "distributions", lambda: found)
    assert install.installed_distributions() == {"foo-bar": "1.0"}  # the first one on sys.path is imported
    assert install.constraints_text({"b": "2", "a": "1.0+cu128"}) == "a==1.0+cu128\nb==2\n"


REPORT = {"install": [
    {"metadata": {"name": "onnx", "version": "1.23.2",
                  "requires_dist": ["numpy>=1.23", "protobuf>=6.31.1", "not a requirement !!",
                                    "protobuf>=9; extra == 'reference'"]}},
    {"metadata": {"name": "protobuf", "version": "7.36.2"}},
    {"metadata": {"name": "numpy", "version": "2.1.3"}},
]}


def test_main_stops_and_names_what_would_have_to_change(monkeypatch, pip_calls, capsys):
    monkeypatch.setattr(install, "missing_requirements", lambda requirements: ["onnx>=1.17"])
    monkeypatch.setattr(install, "installed_distributions", lambda: {"protobuf": "5.29.6", "numpy": "2.1.3"})
    pip_calls.answers = [(1, "", "ResolutionImpossible"), (0, __import__("json").dumps(REPORT), "")]
    assert install.main([]) == install.STOPPED == 1
    constrained, dry_run = pip_calls.commands
    assert "-c" in constrained and pins(pip_calls.constraints[0]) == {"protobuf": "5.29.6", "numpy": "2.1.3"}
    assert "--dry-run" in dry_run and "-c" not in dry_run and dry_run[-1] == "onnx>=1.17"
    err = capsys.readouterr().err
    assert "Stopped: pip could not install onnx>=1.17" in err and "Nothing was installed" in err
    assert "protobuf 5.29.6 -> 7.36.2 (required by onnx 1.23.2: protobuf>=6.31.1)" in err
    assert "numpy 2.1.3 ->" not in err  # unchanged packages are not blamed


def test_main_stops_with_pips_own_error_when_even_the_unpinned_dry_run_fails(monkeypatch, pip_calls, capsys):
    monkeypatch.setattr(install, "missing_requirements", lambda requirements: ["aaa"])
    pip_calls.answers = [(1, "", ""), (1, "", "ERROR: No matching distribution found for aaa")]
    assert install.main([]) == install.STOPPED
    assert "No matching distribution found for aaa" in capsys.readouterr().err


def test_what_would_change_copes_with_output_that_is_not_a_report(pip_calls):
    pip_calls.answers = [(0, "not json", "")]
    assert install.what_would_change(["aaa"], {}) == ([], "not json")
    pip_calls.answers = [(0, '{"install": [{"metadata": {"name": "Aaa", "version": "1"}}]}', "")]
    assert install.what_would_change(["aaa"], {"aaa": "1"}) == ([], "")  # already at that version: no change


def test_main_passes_extras_through(monkeypatch, pip_calls, small_pyproject):
    monkeypatch.setattr(config, "repo_root", lambda: small_pyproject.parent)
    seen = []
    monkeypatch.setattr(install, "missing_requirements", lambda requirements: seen.append(requirements) or [])
    assert install.main(["--extra", "dev"]) == 0
    assert seen == [["numpy>=1.0", BOGUS, "pytest>=8"]]
    assert pip_calls.commands == []


def test_outdated_requirements_are_reported_and_left_alone(monkeypatch, no_pip, capsys):
    import numpy

    assert install.outdated_requirements(["numpy>=999", "numpy>=1", BOGUS, "numpy>=999; python_version < '3'"]) == [
        ("numpy>=999", numpy.__version__)]
    monkeypatch.setattr(install, "course_requirements", lambda extras=(): ["numpy>=999"])
    assert install.main([]) == 0
    out = capsys.readouterr().out
    assert f"the course asks for numpy>=999, this environment has {numpy.__version__}; left as it is" in out


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
