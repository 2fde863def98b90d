"""Tests for course_utils.config: run mode, device, seeding, paths and the setup report."""

from __future__ import annotations

import os
import random
import sys
import types
from pathlib import Path
from types import SimpleNamespace

import matplotlib
import numpy as np
import pytest
import torch

import course_utils
from course_utils import config

REPO = Path(__file__).resolve().parents[1]


# --- fixtures ------------------------------------------------------------------------------------------

@pytest.fixture(autouse=True)
def clean_env(tmp_path, monkeypatch):
    """No run-mode or device overrides, a private data cache, and matplotlib settings restored after."""
    for name in ("COURSE_FAST", "COURSE_USE_CHECKPOINTS", "COURSE_DEVICE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("COURSE_DATA", str(tmp_path / "cache"))
    monkeypatch.setenv("TORCH_HOME", "placeholder")  # recorded so that setup()'s setdefault is undone
    monkeypatch.delenv("TORCH_HOME")
    monkeypatch.setattr(config, "_chapter_clock", {})
    with matplotlib.rc_context():
        yield


@pytest.fixture
def no_accelerators(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    mps = getattr(torch.backends, "mps", None)
    if mps is not None:
        monkeypatch.setattr(mps, "is_available", lambda: False)


# --- run mode ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("value", ["1", "true", "TRUE", " yes ", "on"])
def test_fast_mode_words(monkeypatch, value):
    monkeypatch.setenv("COURSE_FAST", value)
    assert config.is_fast() is True
    assert config.mode() == "fast"
    assert config.pick(full=1000, fast=10) == 10


@pytest.mark.parametrize("value", ["0", "", "false", "off", "no"])
def test_full_mode_words(monkeypatch, value):
    monkeypatch.setenv("COURSE_FAST", value)
    assert config.is_fast() is False
    assert config.mode() == "full"
    assert config.pick(full=1000, fast=10) == 1000


def test_unset_course_fast_means_full_mode():
    assert config.is_fast() is False
    assert config.mode() == "full"
    assert config.pick("full", "fast") == "full"


def test_bad_course_fast_value_raises_naming_the_variable(monkeypatch):
    monkeypatch.setenv("COURSE_FAST", "maybe")
    with pytest.raises(ValueError, match=r"COURSE_FAST must be one of .*'maybe'") as info:
        config.mode()
    assert "''" not in str(info.value).split("got")[0]  # the empty word is not advertised


def test_use_checkpoints_off_by_default():
    assert config.use_checkpoints() is False


def test_use_checkpoints_on_request_in_full_mode(monkeypatch):
    monkeypatch.setenv("COURSE_USE_CHECKPOINTS", "1")
    assert config.use_checkpoints() is True


def test_fast_mode_always_uses_checkpoints(monkeypatch):
    monkeypatch.setenv("COURSE_FAST", "1")
    monkeypatch.setenv("COURSE_USE_CHECKPOINTS", "0")
    assert config.use_checkpoints() is True


def test_bad_use_checkpoints_value_raises(monkeypatch):
    monkeypatch.setenv("COURSE_USE_CHECKPOINTS", "sometimes")
    with pytest.raises(ValueError, match="COURSE_USE_CHECKPOINTS"):
        config.use_checkpoints()


# --- device ----------------------------------------------------------------------------------------------

def test_get_device_is_cpu_without_accelerators(no_accelerators):
    assert config.get_device() == torch.device("cpu")


_HAS_ACCELERATOR = torch.cuda.is_available() or bool(
    getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())


@pytest.mark.skipif(_HAS_ACCELERATOR, reason="this machine has a GPU")
def test_get_device_returns_cpu_on_this_machine():
    assert config.get_device() == torch.device("cpu")


def test_get_device_honours_course_device(monkeypatch):
    monkeypatch.setenv("COURSE_DEVICE", "cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert config.get_device() == torch.device("cpu")


def test_get_device_prefer_argument_wins(monkeypatch):
    monkeypatch.setenv("COURSE_DEVICE", "cuda")
    assert config.get_device(prefer="cpu") == torch.device("cpu")


def test_get_device_prefers_cuda_when_available(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert config.get_device() == torch.device("cuda")


@pytest.mark.skipif(getattr(torch.backends, "mps", None) is None, reason="torch without an MPS backend")
def test_get_device_uses_mps_when_no_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert config.get_device() == torch.device("mps")


def test_device_description_for_cpu_mentions_cores():
    text = config.device_description(torch.device("cpu"))
    assert text.startswith("cpu")
    assert f"{os.cpu_count()} cores" in text
    assert "torch threads" in text


def test_device_description_defaults_to_the_current_device(monkeypatch, no_accelerators):
    assert config.device_description().startswith("cpu (")


def test_device_description_for_cuda_names_the_gpu(monkeypatch):
    fake = SimpleNamespace(name="Fake GPU 9000", total_memory=8e9)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda device: fake)
    assert config.device_description(torch.device("cuda")) == "cuda (Fake GPU 9000, 8.0 GB)"


def test_device_description_for_mps():
    assert config.device_description(torch.device("mps")) == "mps (Apple GPU)"


# --- seeding ---------------------------------------------------------------------------------------------

def _draws():
    return random.random(), np.random.rand(3).tolist(), torch.rand(3).tolist()


def test_seed_everything_makes_python_numpy_and_torch_repeat():
    assert config.seed_everything(123) == 123
    first = _draws()
    config.seed_everything(123)
    assert _draws() == first


def test_different_seeds_give_different_draws():
    config.seed_everything(1)
    first = _draws()
    config.seed_everything(2)
    second = _draws()
    assert all(a != b for a, b in zip(first, second))


def test_seed_everything_accepts_seeds_beyond_numpy_range():
    assert config.seed_everything(2**32 + 5) == 2**32 + 5


def test_seed_everything_deterministic_mode(monkeypatch):
    calls = []
    monkeypatch.setattr(torch, "use_deterministic_algorithms", lambda *a, **k: calls.append((a, k)))
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", True)
    config.seed_everything(0, deterministic=True)
    assert calls == [((True,), {"warn_only": True})]
    assert torch.backends.cudnn.benchmark is False


@pytest.mark.parametrize("bad", [-1, True, False, 1.5, "0", None])
def test_seed_everything_rejects_non_int_bool_and_negative(bad):
    with pytest.raises(ValueError, match="non-negative int"):
        config.seed_everything(bad)


# --- paths -----------------------------------------------------------------------------------------------

def test_repo_root_holds_pyproject():
    root = config.repo_root()
    assert (root / "pyproject.toml").is_file()
    assert root == REPO
    assert (root / "course_utils" / "config.py").is_file()


def test_repo_root_falls_back_to_cwd_outside_a_checkout(monkeypatch, tmp_path):
    monkeypatch.setattr(config, "__file__", str(tmp_path / "site-packages" / "course_utils" / "config.py"))
    monkeypatch.chdir(tmp_path)
    assert config.repo_root() == tmp_path


def test_data_dir_honours_course_data_and_creates_it(monkeypatch, tmp_path):
    target = tmp_path / "somewhere" / "deep"
    monkeypatch.setenv("COURSE_DATA", str(target))
    assert config.data_dir() == target
    assert target.is_dir()


def test_data_dir_defaults_to_repo_data(monkeypatch):
    monkeypatch.delenv("COURSE_DATA")
    assert config.data_dir() == REPO / "data"


def test_checkpoints_and_results_dirs_live_in_the_repo(monkeypatch, tmp_path):
    monkeypatch.setattr(config, "repo_root", lambda: tmp_path)
    assert config.checkpoints_dir() == tmp_path / "data" / "checkpoints"
    assert config.results_dir() == tmp_path / "data" / "results"
    assert (tmp_path / "data" / "checkpoints").is_dir() and (tmp_path / "data" / "results").is_dir()


# --- versions and setup ----------------------------------------------------------------------------------

def test_package_versions_reports_installed_and_missing():
    versions = config.package_versions(("torch", "surely-not-a-real-package-xyz"))
    assert versions["python"] == ".".join(map(str, sys.version_info[:3]))
    assert versions["torch"].split("+")[0] == torch.__version__.split("+")[0]
    assert versions["surely-not-a-real-package-xyz"] == "not installed"


def test_package_versions_default_names():
    assert set(config.package_versions()) == {"python", "torch", "torchvision", "numpy", "matplotlib"}


def test_setup_prints_mode_device_versions_and_returns_report(capsys, tmp_path, no_accelerators):
    report = config.setup("00", seed=3, extra_packages=("surely-not-a-real-package-xyz",))
    out = capsys.readouterr().out
    assert report["chapter"] == "00"
    assert report["mode"] == "full"
    assert report["device"].startswith("cpu (")
    assert report["seed"] == 3
    assert report["data_dir"] == str(tmp_path / "cache")
    assert report["versions"]["surely-not-a-real-package-xyz"] == "not installed"
    assert "Chapter 00 | mode: full | device: cpu (" in out
    assert f"torch {report['versions']['torch']}" in out
    assert "data cache:" in out and "COURSE_DATA" in out
    assert "Colab" not in out
    assert matplotlib.rcParams["figure.dpi"] == 80


def test_setup_seeds_the_generators():
    config.setup("01", seed=5)
    first = _draws()
    config.setup("01", seed=5)
    assert _draws() == first


def test_setup_reports_fast_mode(monkeypatch, capsys):
    monkeypatch.setenv("COURSE_FAST", "1")
    assert config.setup("02")["mode"] == "fast"
    assert "mode: fast" in capsys.readouterr().out


def test_setup_mentions_colab_when_running_there(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    config.setup("00")
    assert "running on Colab" in capsys.readouterr().out


@pytest.mark.parametrize("bad", ["0", 0, "000", "ab", None, "1a"])
def test_setup_rejects_chapters_that_are_not_two_digit_strings(bad):
    with pytest.raises(ValueError, match="two-digit string"):
        config.setup(bad)


def test_package_setup_also_configures_library_caches(tmp_path, capsys):
    report = course_utils.setup("00")
    assert report["chapter"] == "00"
    assert os.environ["TORCH_HOME"] == str(tmp_path / "cache" / "torch")


def test_chapter_seconds_before_setup_raises():
    with pytest.raises(RuntimeError, match=r"course_utils.setup\('07'\)"):
        config.chapter_seconds("07")


def test_chapter_seconds_after_setup_is_small_and_positive(capsys):
    config.setup("07")
    elapsed = config.chapter_seconds("07")
    assert 0 < elapsed < 5
    assert config.chapter_seconds("07") >= elapsed


def test_course_device_typo_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("COURSE_DEVICE", "gpu0")
    with pytest.raises(ValueError, match="COURSE_DEVICE must name a torch device.*'gpu0'"):
        config.get_device()


def test_course_device_cuda_without_a_gpu_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(config.torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv("COURSE_DEVICE", "cuda")
    with pytest.raises(ValueError, match="no CUDA device"):
        config.get_device()


def test_figure_format_is_validated_and_applied_in_ipython(monkeypatch):
    with pytest.raises(ValueError, match="figure_format must be 'png' or 'jpeg', got 'gif'"):
        config._configure_matplotlib("gif")
    import IPython
    import matplotlib_inline.backend_inline as inline

    calls = []
    monkeypatch.setattr(IPython, "get_ipython", lambda: object())  # pretend to run in a notebook
    monkeypatch.setattr(inline, "set_matplotlib_formats", lambda *f, **k: calls.append((f, k)))
    config._configure_matplotlib("jpeg")
    assert calls == [(("jpeg",), {"pil_kwargs": {"quality": 85}})]


def test_a_notebook_kernel_gets_the_inline_backend_even_when_the_environment_says_agg(monkeypatch):
    """MPLBACKEND=Agg (as CI sets it) must not leave plt.show() drawing nothing into a notebook."""
    import sys

    import IPython
    import matplotlib
    import matplotlib_inline.backend_inline as inline

    magics = []

    class KernelShell:
        def run_line_magic(self, name, line):
            magics.append((name, line))

    monkeypatch.setattr(IPython, "get_ipython", KernelShell)
    monkeypatch.setitem(sys.modules, "ipykernel", sys.modules.get("ipykernel", object()))
    monkeypatch.setattr(matplotlib, "get_backend", lambda: "agg")
    monkeypatch.setattr(inline, "set_matplotlib_formats", lambda *f, **k: None)
    config._configure_matplotlib("png")
    assert magics == [("matplotlib", "inline")]
    monkeypatch.setattr(matplotlib, "get_backend", lambda: "module://matplotlib_inline.backend_inline")
    config._configure_matplotlib("png")
    assert magics == [("matplotlib", "inline")], "an inline backend is left alone"
