#!/usr/bin/env bash
# Latest track: what the README's `pip install -e ".[dev]"` resolves today, in a fresh venv on the newest
# Python the project supports, then the README's test command in fast mode.
#   bash .ci/tracks/latest.sh                 # extra arguments go to pytest
source "$(dirname "$0")/common.sh"
LATEST_PYTHON="${LATEST_PYTHON:-3.13}"
VENV="$TRACKS/latest"
if [ "${LATEST_KEEP_VENV:-0}" != 1 ] || [ ! -x "$VENV/bin/python" ]; then
    rm -rf "$VENV"
    "$(find_python "$LATEST_PYTHON")" -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q --upgrade pip
    cd "$REPO" && "$VENV/bin/python" -m pip install -q --upgrade --upgrade-strategy eager -e ".[dev]"
    echo "== installed after $(elapsed)"
fi
source "$VENV/bin/activate"
python -m pip list --format=freeze | grep -iE '^(torch|torchvision|numpy|transformers|diffusers|timm|gradio|ultralytics|opencv-python|pandas)=='
run_suite "$@"
