#!/usr/bin/env bash
# `cordon eval` on six corpora, two of artwork and four of photos:
#
#   tuning           wallpapers, shared/corpus/make-corpus.sh (the PDQ benchmark's too)  tune
#   report           wallpapers, make-eval-corpus.sh                                  held out
#   photos           20 sample photos from PyPI wheels, make-photo-corpus.sh          held out
#   opencv           33 sample photos from opencv-doc, make-opencv-corpus.sh          held out
#   gcompris-tuning  172 photos from gcompris-qt-data, make-gcompris-corpus.sh         tune
#   gcompris-report  82 photos from gcompris-qt-data, make-gcompris-corpus.sh         held out
#
#   bench/eval/run.sh [EXTRA cordon eval OPTIONS...]     e.g. --signals pdq --threads 2
#   SETS="report gcompris-report" bench/eval/run.sh      only these corpora
#
# Builds Cordon (release), makes the corpora under bench/out/eval/ when absent (the tuning
# one is copied from bench/out/inputs/corpus when the PDQ benchmark already made it), then
# for each corpus writes bench/out/eval/SET.jsonl (JSON lines), SET.txt (the table) and
# SET.svg (the chart), and prints the tables with the time each run took. All six take
# about 31 minutes on 2 cores, gcompris-tuning 19 of them.
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

make_opencv() {
    has_images "$out/opencv" && return
    log "opencv corpus: make-opencv-corpus.sh"
    "$here/make-opencv-corpus.sh" "$out/opencv"
}

make_gcompris() {
    has_images "$out/gcompris-tuning" && has_images "$out/gcompris-report" && return
    log "gcompris corpora: make-gcompris-corpus.sh"
    "$here/make-gcompris-corpus.sh" "$out/gcompris-tuning" "$out/gcompris-report"
}

sets=${SETS:-tuning report photos opencv gcompris-tuning gcompris-report}
log "building cordon"
"$root/scripts/deps" build
(cd "$root" && cargo build --release -p cordon)
mkdir -p "$out"
for set in $sets; do
    case $set in
        tuning) make_tuning ;;
        report) make_tuning; make_report ;;
        photos) make_photos ;;
        opencv) make_opencv ;;
        gcompris-tuning | gcompris-report) make_gcompris ;;
        *) echo "run.sh: unknown corpus '$set' in SETS" >&2 && exit 2 ;;
    esac
done
for set in $sets; do
    log "cordon eval on the $set corpus"
    started=$SECONDS
    "$cordon" eval --corpus "$out/$set" --chart "$out/$set.svg" --table "$out/$set.txt" "$@" \
        >"$out/$set.jsonl"
    cat "$out/$set.txt"
    echo "($set: $((SECONDS - started)) s)"
    echo
done
log "results in $out: SET.{jsonl,txt,svg} for each of: $sets"
