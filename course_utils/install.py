"""Install only what is missing (for Colab's setup cell): never upgrade or downgrade what is there.

Colab ships torch, torchvision and many other libraries. Reinstalling them wastes minutes and can
break the runtime, so this reads the course's requirements from ``pyproject.toml`` and pip-installs
only the distributions that are not installed at all::

    python -m course_utils.install            # install the missing ones
    python -m course_utils.install --dry-run  # just list them

Installing a missing package can still make pip upgrade or downgrade one that is there (a new
package's own dependency, e.g. ``onnx`` asking for a newer ``protobuf``). So every installed
distribution is pinned to its current version in a constraints file (``pip install -c``): pip then
picks releases of the missing packages that fit what is installed. When no release fits, nothing is
installed; the message names the installed package that would have to change, and the exit status is 1.
Installed packages older than the course's floor are reported and left alone.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import tomllib
from importlib import metadata
from pathlib import Path

_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
_EXTRAS = re.compile(r"^\s*[A-Za-z0-9][A-Za-z0-9._-]*\s*\[([^\]]*)\]")
STOPPED = 1  # exit status when a missing package cannot be installed without changing an installed one


def requirement_name(requirement: str) -> str:
    """``"torch>=2.3"`` → ``"torch"`` (extras and markers dropped)."""
    match = _NAME.match(requirement)
    if not match:
        raise ValueError(f"not a requirement string: {requirement!r}")
    return match.group(1)


def canonical(name: str) -> str:
    """PEP 503 normalised name: ``Open_CLIP.torch`` → ``open-clip-torch``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def applies_here(requirement: str) -> bool:
    """False when the requirement's environment marker (``; python_version < '3.11'``) excludes us."""
    if ";" not in requirement:
        return True
    from packaging.markers import Marker

    return Marker(requirement.split(";", 1)[1].strip()).evaluate()


def course_requirements(pyproject: Path | None = None, extras=()) -> list[str]:
    """The core dependencies, then those of each extra asked for.

    An extra that names the course itself (``course_utils[local]``) is expanded into that extra's
    requirements, as pip does, instead of counting as "the course is installed".
    """
    if pyproject is None:
        from .config import repo_root  # not at the top: the floors track runs this file before numpy is there

        pyproject = repo_root() / "pyproject.toml"
    data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    project = data["project"]
    optional = project.get("optional-dependencies", {})
    me = canonical(project.get("name", ""))
    requirements, seen = list(project["dependencies"]), set()

    def add(extra):
        if extra in seen:
            return
        seen.add(extra)
        for requirement in optional.get(extra, []):
            if canonical(requirement_name(requirement)) == me:
                match = _EXTRAS.match(requirement)
                for inner in (match.group(1).split(",") if match else []):
                    add(inner.strip())
            else:
                requirements.append(requirement)

    for extra in extras:
        add(extra)
    return requirements


def floor_pins(requirements) -> list[str]:
    """``name==floor`` for every requirement with a ``>=`` floor that applies here (the floors track's constraints).

    A resolver asked for the lowest direct versions may still settle on a higher one when that is easier to
    resolve (uv picked gradio 6.0 over a declared 5.22); pinning each floor makes the track test exactly the
    floors, or fail saying which one cannot be installed.
    """
    from packaging.requirements import Requirement

    pins = []
    for text in requirements:
        if not applies_here(text):
            continue
        requirement = Requirement(text)
        floors = [spec.version for spec in requirement.specifier if spec.operator == ">="]
        if floors:
            pins.append(f"{requirement.name}=={max(floors, key=_version)}")
    return pins


def _version(text: str):
    from packaging.version import Version

    return Version(text)


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


def outdated_requirements(requirements) -> list[tuple[str, str]]:
    """(requirement, installed version) for installed distributions that do not satisfy it.

    They are reported, never changed: Colab's own versions win over the course's floors.
    """
    from packaging.requirements import Requirement

    outdated = []
    for requirement in requirements:
        if not applies_here(requirement):
            continue
        try:
            installed = metadata.version(requirement_name(requirement))
        except metadata.PackageNotFoundError:
            continue
        specifier = Requirement(requirement).specifier
        if specifier and not specifier.contains(installed, prereleases=True):
            outdated.append((requirement, installed))
    return outdated


def installed_distributions() -> dict[str, str]:
    """{normalised name: version} of every distribution this interpreter sees (first one on sys.path wins)."""
    from packaging.version import InvalidVersion, Version

    installed = {}
    for distribution in metadata.distributions():
        name, version = distribution.metadata["Name"], distribution.version
        if not name or not version or canonical(name) in installed:
            continue
        try:
            Version(version)
        except InvalidVersion:  # a legacy version pip cannot pin; pip will not touch it either
            continue
        installed[canonical(name)] = version
    return installed


def constraints_text(installed: dict[str, str]) -> str:
    """A pip constraints file that pins each installed distribution to the version it has now."""
    return "".join(f"{name}=={version}\n" for name, version in sorted(installed.items()))


def _pip(arguments: list[str], capture: bool = False) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pip", *arguments], check=False, capture_output=capture, text=True)


def what_would_change(missing: list[str], installed: dict[str, str]) -> tuple[list[str], str]:
    """Ask pip (dry run, without the pins) what installing ``missing`` would do to what is installed.

    Returns lines like ``"protobuf 5.29.6 -> 7.36.2 (required by onnx 1.23.2: protobuf>=6.31.1)"`` and
    pip's error output when even that dry run fails (e.g. no network, or a release that does not exist).
    """
    from packaging.requirements import InvalidRequirement, Requirement

    completed = _pip(["install", "--dry-run", "--quiet", "--report", "-", *missing], capture=True)
    if completed.returncode != 0:
        return [], (completed.stderr or completed.stdout or "").strip()
    try:
        report = json.loads(completed.stdout)
    except ValueError:
        return [], completed.stdout.strip()
    items = [item["metadata"] for item in report.get("install", [])]
    changes = []
    for item in items:
        name, version = canonical(item["name"]), item["version"]
        if name not in installed or installed[name] == version:
            continue
        because = []
        for other in items:
            for line in other.get("requires_dist") or []:
                try:
                    requirement = Requirement(line)
                except InvalidRequirement:
                    continue
                if canonical(requirement.name) == name and "extra" not in str(requirement.marker or ""):
                    because.append(f"{other['name']} {other['version']}: {requirement.name}{requirement.specifier}")
        changes.append(f"{item['name']} {installed[name]} -> {version}"
                       + (f" (required by {'; '.join(because)})" if because else ""))
    return changes, ""


def install_missing(missing: list[str]) -> int:
    """pip-install ``missing`` with every installed distribution pinned; stop with a message if that fails."""
    installed = installed_distributions()
    with tempfile.TemporaryDirectory() as folder:
        constraints = Path(folder) / "installed-constraints.txt"
        constraints.write_text(constraints_text(installed), encoding="utf-8")
        completed = _pip(["install", "-q", "-c", str(constraints), *missing])
    if completed.returncode == 0:
        return 0
    changes, error = what_would_change(missing, installed)
    print(f"\nStopped: pip could not install {', '.join(missing)} while keeping every installed package at its "
          f"current version ({len(installed)} pinned). Nothing was installed.", file=sys.stderr)
    if changes:
        print("Installing them would change these installed packages:\n  " + "\n  ".join(changes), file=sys.stderr)
        print("Change those yourself if you accept it (e.g. pip install 'NAME==VERSION'), or use a fresh "
              "environment: pip install -e '.[dev]'.", file=sys.stderr)
    elif error:
        print("pip's dry run without the pins failed too:\n" + error[-2000:], file=sys.stderr)
    return STOPPED


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_utils.install")
    parser.add_argument("--dry-run", action="store_true")
    parser.add_argument("--extra", action="append", default=[], help="also an optional extra, e.g. dev")
    args = parser.parse_args(argv)
    requirements = course_requirements(extras=args.extra)
    for requirement, version in outdated_requirements(requirements):
        print(f"Note: the course asks for {requirement}, this environment has {version}; left as it is.")
    missing = missing_requirements(requirements)
    if not missing:
        print("All course packages are already installed.")
        return 0
    print("Missing: " + ", ".join(missing))
    if args.dry_run:
        return 0
    return install_missing(missing)


if __name__ == "__main__":
    sys.exit(main())
