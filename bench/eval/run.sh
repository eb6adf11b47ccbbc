#!/usr/bin/env bash
# `cordon eval` on three corpora: the TUNING corpus (shared/corpus/make-corpus.sh, the one the
# PDQ benchmark uses too), the held-out REPORT corpus of wallpapers (make-eval-corpus.sh) and
# the held-out PHOTOS corpus (make-photo-corpus.sh). One command:
#
#   bench/eval/run.sh [EXTRA cordon eval OPTIONS...]     e.g. --signals pdq --threads 2
#
# Builds Cordon (release), makes the corpora under bench/out/eval/ when absent (the tuning
# one is copied from bench/out/inputs/corpus when the PDQ benchmark already made it), then
# for each corpus writes bench/out/eval/SET.jsonl (JSON lines), SET.txt (the table) and
# SET.svg (the chart), and prints the tables with the time each run took.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
out=$root/bench/out/eval
shared=${CORDON_SHARED:-$root/../shared}
cordon=${CARGO_TARGET_DIR:-$root/target}/release/cordon
log() { echo "== $*" >&2; }

has_images() {
    [[ -d $1 ]] && [[ -n $(find "$1" -mindepth 1 -name '.*' -prune -o -type f -print -quit) ]]
}

make_tuning() {
    local dir=$out/tuning
    has_images "$dir" && return
    if has_images "$root/bench/out/inputs/corpus"; then
        log "tuning corpus: copying bench/out/inputs/corpus"
        mkdir -p "$dir"
        find "$root/bench/out/inputs/corpus" -maxdepth 1 -type f -exec cp {} "$dir/" \;
    else
        log "tuning corpus: $shared/corpus/make-corpus.sh"
        "$shared/corpus/make-corpus.sh" "$dir"
    fi
}

make_report() {
    has_images "$out/report" && return
    log "report corpus: make-eval-corpus.sh"
    "$here/make-eval-corpus.sh" "$out/report" "$out/tuning"
}

make_photos() {
    has_images "$out/photos" && return
    log "photos corpus: make-photo-corpus.sh"
    "$here/make-photo-corpus.sh" "$out/photos"
}

log "building cordon"
(cd "$root" && cargo build --release -p cordon)
mkdir -p "$out"
make_tuning
make_report
make_photos
for set in tuning report photos; do
    log "cordon eval on the $set corpus"
    started=$SECONDS
    "$cordon" eval --corpus "$out/$set" --chart "$out/$set.svg" --table "$out/$set.txt" "$@" \
        >"$out/$set.jsonl"
    cat "$out/$set.txt"
    echo "($set: $((SECONDS - started)) s)"
    echo
done
log "results in $out: {tuning,report,photos}.{jsonl,txt,svg}"
