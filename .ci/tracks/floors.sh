#!/usr/bin/env bash
# Floors track: every direct dependency of the course (and of the dev extra) at the minimum pyproject.toml
# declares (pinned with a constraints file from course_utils.install.floor_pins, and uv's --resolution lowest-direct;
# what they depend on resolves as usual), on the oldest Python
# the project claims, then the README's test command in fast mode.
#   bash .ci/tracks/floors.sh                 # build anew and test; extra arguments go to pytest
#   FLOORS_KEEP_VENV=1 bash .ci/tracks/floors.sh notebooks/08_deployment.ipynb
source "$(dirname "$0")/common.sh"
FLOORS_PYTHON="${FLOORS_PYTHON:-3.11}"   # requires-python's lower bound
VENV="$TRACKS/floors"
UV="$(uv_bin)"

if [ "${FLOORS_KEEP_VENV:-0}" != 1 ] || [ ! -x "$VENV/bin/python" ]; then
    rm -rf "$VENV"
    "$UV" venv -q --seed -p "$(find_python "$FLOORS_PYTHON")" "$VENV"
    cd "$REPO"
    # Each floor pinned exactly (lowest-direct alone may settle on a higher release that resolves more easily).
    "$UV" pip install -q -p "$VENV/bin/python" packaging
    "$VENV/bin/python" - "$REPO" > "$TRACKS/floors-constraints.txt" <<'PY'
import runpy, sys
from pathlib import Path
install = runpy.run_path(f"{sys.argv[1]}/course_utils/install.py")  # the file alone: the package needs numpy
print("\n".join(install["floor_pins"](install["course_requirements"](Path(sys.argv[1]) / "pyproject.toml", ["dev"]))))
PY
    "$UV" pip install -q -p "$VENV/bin/python" --resolution lowest-direct -c "$TRACKS/floors-constraints.txt" -e ".[dev]"
    echo "== installed after $(elapsed)"
fi
source "$VENV/bin/activate"
cd "$REPO"
# The versions under test: each direct dependency with the version installed.
python - <<'PY'
import sys
from importlib import metadata
from course_utils import install
print("python", sys.version.split()[0])
for requirement in install.course_requirements(extras=["dev"]):
    if install.applies_here(requirement):
        name = install.requirement_name(requirement)
        print(f"  {requirement:<40} {metadata.version(name)}")
PY
run_suite "$@"
