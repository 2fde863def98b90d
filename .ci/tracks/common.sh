# Shared by the dependency tracks (sourced, not run). Each track builds its own venv outside the clone.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
TRACKS="${COURSE_TRACKS_DIR:-$HOME/.cache/cv-course/tracks}"
mkdir -p "$TRACKS"
started=$(date +%s)

# uv (from PyPI) builds the venvs and resolves the floors; installed once into a small venv of its own.
uv_bin() {
    if command -v uv >/dev/null 2>&1; then command -v uv; return; fi
    if [ ! -x "$TRACKS/tools/bin/uv" ]; then
        python3 -m venv "$TRACKS/tools" && "$TRACKS/tools/bin/pip" install -q uv
    fi
    echo "$TRACKS/tools/bin/uv"
}

# A Python X.Y that is installed here (PATH, then pyenv): uv must not download one (no network but registries).
export UV_PYTHON_DOWNLOADS=never
find_python() {
    local version="$1" candidate
    for candidate in "$(command -v "python$version" || true)" "${PYENV_ROOT:-$HOME/.pyenv}"/versions/"$version"*/bin/"python$version"; do
        if [ -n "$candidate" ] && "$candidate" -c "" 2>/dev/null; then echo "$candidate"; return; fi
    done
    echo "no Python $version found (PATH, pyenv)" >&2
    return 1
}

elapsed() { echo "$(( $(date +%s) - started )) s"; }

# The README's test command in fast mode, offline, with the shared asset mirror when it is there.
run_suite() {
    cd "$REPO"
    if [ -z "${COURSE_ASSET_MIRROR:-}" ] && [ -d "$REPO/../shared/assets" ]; then
        export COURSE_ASSET_MIRROR="$(cd "$REPO/../shared/assets" && pwd)"
    fi
    export MPLBACKEND=Agg HF_HUB_OFFLINE=1 YOLO_OFFLINE=1
    echo "== test command (after $(elapsed)): COURSE_FAST=1 pytest --cov $*"
    COURSE_FAST=1 python -m pytest --cov "$@"
    echo "== track finished after $(elapsed)"
}
