"""Install only what is missing (for Colab's setup cell): never upgrade or downgrade what is there.

Colab ships torch, torchvision and many other libraries. Reinstalling them wastes minutes and can
break the runtime, so this reads the course's requirements from ``pyproject.toml`` and pip-installs
only the distributions that are not installed at all::

    python -m course_utils.install            # install the missing ones
    python -m course_utils.install --dry-run  # just list them
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

try:  # Python 3.11+
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    import tomli as tomllib

from .config import repo_root

_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def requirement_name(requirement: str) -> str:
    """``"torch>=2.3"`` → ``"torch"`` (extras and markers dropped)."""
    match = _NAME.match(requirement)
    if not match:
        raise ValueError(f"not a requirement string: {requirement!r}")
    return match.group(1)


def applies_here(requirement: str) -> bool:
    """False when the requirement's environment marker (``; python_version < '3.11'``) excludes us."""
    if ";" not in requirement:
        return True
    from packaging.markers import Marker

    return Marker(requirement.split(";", 1)[1].strip()).evaluate()


def course_requirements(pyproject: Path | None = None, extras=()) -> list[str]:
    data = tomllib.loads((pyproject or repo_root() / "pyproject.toml").read_text(encoding="utf-8"))
    project = data["project"]
    requirements = list(project["dependencies"])
    for extra in extras:
        requirements += project.get("optional-dependencies", {}).get(extra, [])
    return requirements


def missing_requirements(requirements) -> list[str]:
    """The requirements whose distribution is not installed at all."""
    missing = []
    for requirement in requirements:
        if not applies_here(requirement):
            continue
        try:
            metadata.version(requirement_name(requirement))
        except metadata.PackageNotFoundError:
            missing.append(requirement)
    return missing


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_utils.install")
    parser.add_argument("--dry-run", action="store_true")
    parser.add_argument("--extra", action="append", default=[], help="also an optional extra, e.g. dev")
    args = parser.parse_args(argv)
    missing = missing_requirements(course_requirements(extras=args.extra))
    if not missing:
        print("All course packages are already installed.")
        return 0
    print("Missing: " + ", ".join(missing))
    if args.dry_run:
        return 0
    return subprocess.call([sys.executable, "-m", "pip", "install", "-q", *missing])


if __name__ == "__main__":
    sys.exit(main())
