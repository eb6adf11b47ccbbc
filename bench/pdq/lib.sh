# Sourced by make-inputs.sh and run.sh: paths and the Python venv for the peers.
# shellcheck shell=bash
BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$BENCH_DIR/../.." && pwd)
OUT_DIR=${OUT_DIR:-$REPO_DIR/bench/out}

# The venv with Pillow, numpy and PyPI pdqhash. $VENV wins; else an existing shared
# /work/.venv-peers that already has pdqhash; else bench/out/venv, created on first use.
ensure_venv() {
    if [[ -z ${VENV:-} ]]; then
        if [[ -x /work/.venv-peers/bin/python ]] &&
            /work/.venv-peers/bin/python -c 'import PIL, numpy, pdqhash' 2>/dev/null; then
            VENV=/work/.venv-peers
        else
            VENV=$OUT_DIR/venv
        fi
    fi
    if ! "$VENV/bin/python" -c 'import PIL, numpy, pdqhash' 2>/dev/null; then
        echo "== creating Python venv $VENV (pillow, numpy, pdqhash==0.2.8)" >&2
        python3 -m venv "$VENV"
        "$VENV/bin/pip" install --quiet --upgrade pip
        # pdqhash 0.2.8 is an sdist: building it needs a C++ compiler (g++), present here
        "$VENV/bin/pip" install --quiet pillow numpy 'pdqhash==0.2.8'
    fi
    PY=$VENV/bin/python
    export VENV PY
}
