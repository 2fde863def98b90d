"""Run mode, device, seeding, paths and the environment report every notebook's setup cell prints.

The course has one switch, ``COURSE_FAST``: unset (or ``0``) means *full* mode, the real run students
do; ``COURSE_FAST=1`` means *fast* mode, a smoke run for CI and instructors' dry runs in which every
code path executes on tiny subsets. The switch is read here and nowhere else.
"""

from __future__ import annotations

import os
import platform
import random
import sys
import time
from importlib import metadata
from pathlib import Path

import numpy as np
import torch

_TRUE_WORDS = {"1", "true", "yes", "on"}
_FALSE_WORDS = {"", "0", "false", "no", "off"}


def _env_flag(name: str) -> bool:
    raw = os.environ.get(name, "").strip().lower()
    if raw in _TRUE_WORDS:
        return True
    if raw in _FALSE_WORDS:
        return False
    raise ValueError(f"{name} must be one of {sorted(_TRUE_WORDS | _FALSE_WORDS - {''})}, got {raw!r}")


def is_fast() -> bool:
    """True when ``COURSE_FAST`` asks for the smoke-test mode."""
    return _env_flag("COURSE_FAST")


def mode() -> str:
    """``"fast"`` or ``"full"``."""
    return "fast" if is_fast() else "full"


def use_checkpoints() -> bool:
    """Whether full mode should load committed checkpoints instead of training (``COURSE_USE_CHECKPOINTS=1``).

    Fast mode always prefers checkpoints, so its quality checks stay meaningful.
    """
    return is_fast() or _env_flag("COURSE_USE_CHECKPOINTS")


def pick(full, fast):
    """Return ``full`` in full mode and ``fast`` in fast mode: the one place sizes are chosen."""
    return fast if is_fast() else full


def get_device(prefer: str | None = None) -> torch.device:
    """The best available device: CUDA, then Apple's MPS, then the CPU.

    ``COURSE_DEVICE`` (or ``prefer``) forces one, e.g. ``cpu`` to compare timings.
    """
    forced = prefer or os.environ.get("COURSE_DEVICE")
    if forced:
        try:
            device = torch.device(forced)
        except RuntimeError:
            raise ValueError(f"COURSE_DEVICE must name a torch device such as cpu, cuda or mps, "
                             f"got {forced!r}") from None
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"COURSE_DEVICE asks for {forced!r}, but this machine has no CUDA device")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed_everything(seed: int = 0, deterministic: bool = False) -> int:
    """Seed Python, NumPy and PyTorch (all devices); optionally ask for deterministic kernels."""
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
    return seed


def repo_root() -> Path:
    """The course checkout that holds this package (where ``pyproject.toml`` lives), else the cwd."""
    package_parent = Path(__file__).resolve().parents[1]
    if (package_parent / "pyproject.toml").exists():
        return package_parent
    return Path.cwd()


def data_dir() -> Path:
    """The writable data cache: ``COURSE_DATA`` if set, else ``<repo>/data``. Created on demand."""
    root = Path(os.environ.get("COURSE_DATA") or repo_root() / "data").expanduser()
    root.mkdir(parents=True, exist_ok=True)
    return root


def checkpoints_dir() -> Path:
    """Small committed checkpoints: always ``<repo>/data/checkpoints`` (not moved by ``COURSE_DATA``)."""
    path = repo_root() / "data" / "checkpoints"
    path.mkdir(parents=True, exist_ok=True)
    return path


def results_dir() -> Path:
    """Committed chapter results: ``<repo>/data/results``."""
    path = repo_root() / "data" / "results"
    path.mkdir(parents=True, exist_ok=True)
    return path


_REPORTED_PACKAGES = ("torch", "torchvision", "numpy", "matplotlib")


def package_versions(names=_REPORTED_PACKAGES) -> dict[str, str]:
    """Installed versions of ``names`` (``"not installed"`` for missing ones)."""
    versions = {"python": platform.python_version()}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def device_description(device: torch.device | None = None) -> str:
    """A human-readable device name, with GPU model and memory when there is one."""
    device = device or get_device()
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        return f"cuda ({props.name}, {props.total_memory / 1e9:.1f} GB)"
    if device.type == "mps":
        return "mps (Apple GPU)"
    return f"cpu ({os.cpu_count()} cores, {torch.get_num_threads()} torch threads)"


_chapter_clock: dict[str, float] = {}


def _configure_matplotlib(figure_format: str = "png") -> None:
    """Modest dpi keeps committed notebooks small while figures stay readable when projected.

    ``figure_format="jpeg"`` suits photo-heavy chapters: PNG stores photographs 5–10× larger.
    """
    import matplotlib

    if figure_format not in ("png", "jpeg"):
        raise ValueError(f"figure_format must be 'png' or 'jpeg', got {figure_format!r}")
    shell = None
    if "IPython" in sys.modules:
        from IPython import get_ipython

        shell = get_ipython()
    in_kernel = shell is not None and "ipykernel" in sys.modules and hasattr(shell, "run_line_magic")
    if in_kernel and "inline" not in matplotlib.get_backend().lower():
        # A non-interactive backend from the environment (MPLBACKEND=Agg, as in CI) would make plt.show()
        # draw nothing into the notebook, and its committed outputs would have no figures.
        shell.run_line_magic("matplotlib", "inline")
    matplotlib.rcParams.update({"figure.dpi": 80, "savefig.dpi": 80, "axes.titlesize": 11})
    from .viz import watch_figures

    watch_figures()  # every figure is checked for a title and axis labels as it is drawn
    if shell is not None:
        from matplotlib_inline.backend_inline import set_matplotlib_formats

        options = {"pil_kwargs": {"quality": 85}} if figure_format == "jpeg" else {}
        set_matplotlib_formats(figure_format, **options)


def setup(chapter: str, seed: int = 0, extra_packages=(), figure_format: str = "png") -> dict:
    """The setup cell's one call: start the chapter clock, seed, and print mode, device and versions."""
    if not (isinstance(chapter, str) and len(chapter) == 2 and chapter.isdigit()):
        raise ValueError(f"chapter must be a two-digit string such as '00', got {chapter!r}")
    _chapter_clock[chapter] = time.perf_counter()
    seed_everything(seed)
    _configure_matplotlib(figure_format)
    device = get_device()
    report = {
        "chapter": chapter,
        "mode": mode(),
        "device": device_description(device),
        "versions": package_versions(tuple(_REPORTED_PACKAGES) + tuple(extra_packages)),
        "seed": seed,
        "data_dir": str(data_dir()),
    }
    print(f"Chapter {chapter} | mode: {report['mode']} | device: {report['device']} | seed: {seed}")
    print("versions: " + ", ".join(f"{k} {v}" for k, v in report["versions"].items()))
    print(f"data cache: {report['data_dir']}   (override with COURSE_DATA)")
    if "google.colab" in sys.modules:
        print("running on Colab")
    return report


def chapter_seconds(chapter: str) -> float:
    """Wall time since :func:`setup` was called for ``chapter``."""
    if chapter not in _chapter_clock:
        raise RuntimeError(f"chapter {chapter!r} was not started: call course_utils.setup({chapter!r}) first")
    return time.perf_counter() - _chapter_clock[chapter]
