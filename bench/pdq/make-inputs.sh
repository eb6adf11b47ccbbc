#!/usr/bin/env bash
# Builds the PDQ benchmark inputs (about 3 minutes on 2 cores, ~100 MB):
#   OUT/corpus   ~40 real photos/artworks (JPEG/PNG, 0.7-24 MP) from Debian wallpaper
#                packages, via shared/corpus/make-corpus.sh (apt-get download, no root needed)
#   OUT/large    10 JPEGs of 4000x3000 (12 MP), q90
#   OUT/reposts  ~400 re-encodings of the originals (JPEG/PNG/WebP, long side 640-1600)
#   OUT/manifest.tsv
# usage: make-inputs.sh [OUT]      (default: bench/out/inputs). Re-running keeps what exists;
# delete OUT/large or OUT/reposts to regenerate them.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
out=$(mkdir -p "${1:-$OUT_DIR/inputs}" && cd "${1:-$OUT_DIR/inputs}" && pwd)

corpus_script=${CORPUS_SCRIPT:-$REPO_DIR/../shared/corpus/make-corpus.sh}
[[ -f $corpus_script ]] || corpus_script=/work/shared/corpus/make-corpus.sh
count_images() { find "$1" -maxdepth 1 -type f \( -iname '*.jpg' -o -iname '*.jpeg' -o -iname '*.png' -o -iname '*.webp' \) 2>/dev/null | wc -l; }

if (( $(count_images "$out/corpus") < 20 )); then
    echo "== corpus: $corpus_script $out/corpus" >&2
    bash "$corpus_script" "$out/corpus"
fi
if (( $(count_images "$out/large") == 0 || $(count_images "$out/reposts") == 0 )); then
    ensure_venv
    echo "== deriving large/ and reposts/ with Pillow" >&2
    "$PY" "$BENCH_DIR/make_inputs.py" "$out"
fi
echo "inputs: $(count_images "$out/corpus") originals, $(count_images "$out/large") large, $(count_images "$out/reposts") reposts in $out"
