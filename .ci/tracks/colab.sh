#!/usr/bin/env bash
# Colab replica track: a venv with Colab's preinstalled versions (colab-pins.txt) on Colab's Python, then the
# notebooks' first cell (pip install --no-deps -e . && python -m course_utils.install), which must change no
# installed version, then the test tools the same way, then the README's test command in fast mode.
#   bash .ci/tracks/colab.sh              # build anew and test;  extra arguments go to pytest
#   COLAB_KEEP_VENV=1 bash .ci/tracks/colab.sh tests/test_ddp.py   # reuse the venv (skip the install checks)
source "$(dirname "$0")/common.sh"
COLAB_PYTHON="${COLAB_PYTHON:-3.13}"   # Colab's Python (os-info-gpu.txt in googlecolab/backend-info)
VENV="$TRACKS/colab"
UV="$(uv_bin)"

if [ "${COLAB_KEEP_VENV:-0}" != 1 ] || [ ! -x "$VENV/bin/python" ]; then
    rm -rf "$VENV"
    "$UV" venv -q --seed -p "$(find_python "$COLAB_PYTHON")" "$VENV"
    # Colab's image: its pinned versions, and whatever those need (pip as Colab has it).
    "$UV" pip install -q -p "$VENV/bin/python" -r "$REPO/.ci/tracks/colab-pins.txt" pip==24.1.2
    echo "== Colab image built after $(elapsed)"
    source "$VENV/bin/activate"
    cd "$REPO"
    freeze() { python -m pip freeze --exclude-editable | grep -vi '^course.utils' | sort; }
    freeze > "$TRACKS/colab-freeze-before.txt"
    # The notebooks' first cell, as Colab runs it from notebooks/ (there: pip install -q --no-deps -e ..).
    python -m pip install -q --no-deps -e .
    python -m course_utils.install
    freeze > "$TRACKS/colab-freeze-after-install.txt"
    # The test tools, installed the same careful way.
    python -m course_utils.install --extra dev
    freeze > "$TRACKS/colab-freeze-after-dev.txt"
    echo "== installs finished after $(elapsed)"
    changed=0
    for after in colab-freeze-after-install.txt colab-freeze-after-dev.txt; do
        # Lines of the image that are gone (a version changed or a package was removed) are failures.
        gone=$(comm -23 "$TRACKS/colab-freeze-before.txt" "$TRACKS/$after")
        added=$(comm -13 "$TRACKS/colab-freeze-before.txt" "$TRACKS/$after" | wc -l)
        echo "== $after: $added distributions added; changed or removed: ${gone:-none}"
        [ -z "$gone" ] || changed=1
    done
    if [ "$changed" = 1 ]; then echo "FAIL: the install changed what Colab had"; exit 1; fi
else
    source "$VENV/bin/activate"
fi
python -c "import sys, torch, numpy; print('python', sys.version.split()[0], 'torch', torch.__version__, 'numpy', numpy.__version__)"
run_suite "$@"
