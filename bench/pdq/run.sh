#!/usr/bin/env bash
# PDQ side by side: Cordon vs PyPI pdqhash (HMA's pipeline) vs the crate pdqhash 0.1.1,
# same files, each tool pinned to one core. One command, ~10 minutes on 2 cores:
#
#   bench/pdq/run.sh
#
# Steps: make the inputs if missing (make-inputs.sh), the Python venv if missing, build the
# Rust peer (bench/pdq/rust-peer, own target dir under bench/out), build Cordon
# (`cargo build --release -p cordon`), then for each set and tool
#   taskset -c $CORE TOOL --reps N FILES...  >  bench/out/pdq-runs/TOOL--SET.jsonl
# and finally summarize.py -> bench/out/pdq-results.md + bench/out/pdq-results.json.
#
# Environment knobs (defaults in brackets):
#   SETS ["web originals large"]  TOOLS ["cordon pypi crate"]  CORE [0]
#   REPS_WEB [5]  REPS_ORIGINALS [3]  REPS_LARGE [3]
#   SKIP_CORDON=1      do not build or run Cordon (peers only)
#   REQUIRE_CORDON=1   fail instead of warning when `cordon bench pdq` is missing
#   OUT_DIR [bench/out]  VENV [see lib.sh]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SETS=${SETS:-web originals large}
TOOLS=${TOOLS:-cordon pypi crate}
CORE=${CORE:-0}
REPS_WEB=${REPS_WEB:-5}
REPS_ORIGINALS=${REPS_ORIGINALS:-3}
REPS_LARGE=${REPS_LARGE:-3}
INPUTS=$OUT_DIR/inputs
RUNS=$OUT_DIR/pdq-runs
PEER_TARGET=$OUT_DIR/rust-peer-target
CORDON_TARGET=${CARGO_TARGET_DIR:-$REPO_DIR/target}
CORDON=$CORDON_TARGET/release/cordon
PEER=$PEER_TARGET/release/pdq-rust-peer
notes=()
log() { echo "== $*" >&2; }

set_dir() {
    case $1 in
        web) echo reposts ;;
        originals) echo corpus ;;
        large) echo large ;;
        *) echo "unknown set $1" >&2; return 1 ;;
    esac
}
set_reps() {
    case $1 in
        web) echo "$REPS_WEB" ;;
        originals) echo "$REPS_ORIGINALS" ;;
        large) echo "$REPS_LARGE" ;;
    esac
}

start=$SECONDS
mkdir -p "$OUT_DIR"

# 1. inputs + venv
"$BENCH_DIR/make-inputs.sh" "$INPUTS"
ensure_venv

# 2. Rust peer (own workspace, own target dir, locked versions)
if [[ " $TOOLS " == *" crate "* ]]; then
    log "building the Rust peer (crate pdqhash 0.1.1)"
    CARGO_TARGET_DIR=$PEER_TARGET cargo build --release --locked --quiet \
        --manifest-path "$BENCH_DIR/rust-peer/Cargo.toml"
fi

# 3. Cordon
if [[ " $TOOLS " == *" cordon "* && -z ${SKIP_CORDON:-} ]]; then
    log "building Cordon (cargo build --release -p cordon)"
    (cd "$REPO_DIR" && cargo build --release --quiet -p cordon)
    if ! "$CORDON" bench pdq --help >/dev/null 2>&1; then
        msg="\`$CORDON bench pdq\` is not available yet: Cordon was not run"
        [[ -n ${REQUIRE_CORDON:-} ]] && { echo "error: $msg" >&2; exit 1; }
        echo "warning: $msg" >&2
        notes+=("$msg.")
        TOOLS=${TOOLS//cordon/}
    fi
else
    TOOLS=${TOOLS//cordon/}
fi

pin=(taskset -c "$CORE")
if ! command -v taskset >/dev/null; then
    pin=()
    notes+=("taskset missing: runs were NOT pinned to one core.")
fi
export RAYON_NUM_THREADS=1 # the crate's jpeg-decoder uses rayon; Cordon must run one thread anyway

set_tool_cmd() { # sets the array cmd
    case $1 in
        cordon) cmd=("$CORDON" bench pdq) ;;
        pypi) cmd=("$PY" "$BENCH_DIR/peer_pdqhash.py") ;;
        crate) cmd=("$PEER") ;;
        *) echo "unknown tool $1" >&2; return 1 ;;
    esac
}

# 4. runs: same file list, same order, for every tool; paths relative to $INPUTS
rm -rf "$RUNS"
mkdir -p "$RUNS"
declare -A wall
cd "$INPUTS"
for set in $SETS; do
    dir=$(set_dir "$set")
    reps=$(set_reps "$set")
    mapfile -t files < <(find "$dir" -maxdepth 1 -type f \( -iname '*.jpg' -o -iname '*.jpeg' -o -iname '*.png' -o -iname '*.webp' \) | LC_ALL=C sort)
    for tool in $TOOLS; do
        set_tool_cmd "$tool"
        log "$set: $tool, ${#files[@]} files x $reps reps"
        t0=$SECONDS
        rc=0
        "${pin[@]}" "${cmd[@]}" --reps "$reps" "${files[@]}" >"$RUNS/$tool--$set.jsonl" 2>"$RUNS/$tool--$set.stderr" || rc=$?
        wall[$tool--$set]=$((SECONDS - t0))
        n_ok=$(grep -c '"hash"' "$RUNS/$tool--$set.jsonl" || true)
        n_err=$(grep -c '"error"' "$RUNS/$tool--$set.jsonl" || true)
        log "   ${wall[$tool--$set]} s, $n_ok hashed, $n_err failed (exit $rc)"
        if ((rc != 0 && n_err == 0)) || ((n_ok == 0)); then
            echo "warning: $tool on $set exited $rc; see $RUNS/$tool--$set.stderr" >&2
            tail -5 "$RUNS/$tool--$set.stderr" >&2 || true
            notes+=("$tool on $set exited with status $rc ($n_ok files hashed).")
        fi
    done
done
cd - >/dev/null

# 5. metadata + summary
cpuinfo() { grep -m1 "^$1" /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'; }
cpu="$(cpuinfo 'model name') (family $(cpuinfo 'cpu family') model $(cpuinfo 'model\s'), $(nproc) cores)"
head_ref=unknown
if [[ -f $REPO_DIR/.git/HEAD ]]; then # read the files; no git command on the repo
    head_ref=$(cat "$REPO_DIR/.git/HEAD")
    if [[ $head_ref == ref:* ]]; then
        ref=${head_ref#ref: }
        head_ref=$(cat "$REPO_DIR/.git/$ref" 2>/dev/null || grep " $ref\$" "$REPO_DIR/.git/packed-refs" 2>/dev/null | cut -c1-40 || echo "$ref")
    fi
    head_ref=${head_ref:0:12}
fi
walls=$(for k in "${!wall[@]}"; do printf '%s\t%s\n' "$k" "${wall[$k]}"; done)
notes_txt=$(printf '%s\n' "${notes[@]+"${notes[@]}"}")
META_CPU=$cpu META_CORE=$CORE META_HEAD=$head_ref META_WALLS=$walls META_NOTES=$notes_txt \
META_REPS="web=$REPS_WEB originals=$REPS_ORIGINALS large=$REPS_LARGE" META_SETS=$SETS \
META_RUSTC=$(rustc --version) META_LOAD=$(cut -d' ' -f1-3 /proc/loadavg) \
META_PEER_LOCK=$BENCH_DIR/rust-peer/Cargo.lock \
    "$PY" - "$RUNS/meta.json" <<'EOF'
import json, os, platform, re, sys, time
import numpy, PIL
from importlib.metadata import version
env = os.environ
reps = dict(kv.split("=") for kv in env["META_REPS"].split())
lock = open(env["META_PEER_LOCK"]).read()
def locked(name):
    m = re.search(r'name = "%s"\nversion = "([^"]+)"' % re.escape(name), lock)
    return m.group(1) if m else "?"
meta = {
    "date": time.strftime("%Y-%m-%d %H:%M %Z"),
    "cpu": env["META_CPU"],
    "core": env["META_CORE"],
    "reps": {s: int(reps[s]) for s in env["META_SETS"].split() if s in reps},
    "versions": {
        "cordon": "repo HEAD " + env["META_HEAD"] + " (+ working tree)",
        "rustc": env["META_RUSTC"].split(" (")[0],
        "Python": platform.python_version(),
        "pdqhash (PyPI)": version("pdqhash"),
        "Pillow": PIL.__version__,
        "numpy": numpy.__version__,
        "pdqhash (crate)": locked("pdqhash"),
        "image (crate)": locked("image"),
        "jpeg-decoder (crate)": locked("jpeg-decoder"),
    },
    "wall_seconds": {k: int(v) for k, v in (l.split("\t") for l in env["META_WALLS"].splitlines() if l)},
    "load_average_at_end": env["META_LOAD"],
    "notes": [n for n in env["META_NOTES"].splitlines() if n],
}
json.dump(meta, open(sys.argv[1], "w"), indent=1)
EOF

"$PY" "$BENCH_DIR/summarize.py" --results "$RUNS" --meta "$RUNS/meta.json" \
    --md "$OUT_DIR/pdq-results.md" --json "$OUT_DIR/pdq-results.json" >/dev/null
log "done in $((SECONDS - start)) s: $OUT_DIR/pdq-results.md, $OUT_DIR/pdq-results.json (raw: $RUNS/)"
