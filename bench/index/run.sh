#!/usr/bin/env bash
# Match-index benchmark, side by side in one run on the same hashes: Cordon vs faiss
# IndexBinaryMultiHash(256,16,16) nflip=1 (HMA's index) vs faiss IndexBinaryFlat
# (range_search), one thread each, whole process including loading the bank, result sets
# compared. See README.md next to this file.
#
#   bench/index/run.sh            # sizes 1 M and 10 M, 20 k queries, radius 31
#   SIZES=1000000 bench/index/run.sh
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$BENCH_DIR/../.." && pwd)
OUT_DIR=${OUT_DIR:-$REPO_DIR/bench/out}
WORK=$OUT_DIR/index
PEERS=${PEERS:-/work/shared/peers}

SIZES=${SIZES:-"1000000 10000000"}
QUERIES=${QUERIES:-20000}
RADIUS=${RADIUS:-31}
TOOLS=${TOOLS:-"cordon mih flat"}
CORE=${CORE:-1}                  # every process of this benchmark is pinned here
REPS=${REPS:-3}                  # repetitions of every tool at sizes below BIG
BIG=${BIG:-5000000}              # from this bank size on, the peers run REPS_BIG times
REPS_BIG=${REPS_BIG:-1}          # (Cordon keeps REPS: it takes seconds)
MIH_QUERIES_BIG=${MIH_QUERIES_BIG:-$QUERIES}  # queries for faiss MIH at sizes >= BIG
FLAT_QUERIES_BIG=${FLAT_QUERIES_BIG:-2000}    # queries for faiss flat at sizes >= BIG
BANK=INDEX_BENCH
CORDON_SRC=${CORDON:-$REPO_DIR/target/release/cordon}
FAISS_VERSION=${FAISS_VERSION:-1.15.1}

log() { printf '== %s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
pin() { taskset -c "$CORE" "$@"; }

# --- tools -------------------------------------------------------------------------------
if [[ ! -x /usr/bin/time ]]; then
    log "installing GNU time (apt package 'time') for peak RSS"
    if [[ $(id -u) == 0 ]]; then apt-get install -y -qq time >&2; else sudo apt-get install -y -qq time >&2; fi
fi
command -v taskset >/dev/null || { echo "taskset (util-linux) is needed" >&2; exit 1; }

# The venv with numpy and faiss-cpu: $VENV wins; else /work/.venv-peers or bench/out/venv
# when they already have both; else bench/out/index/venv, created on first use.
has_faiss() { [[ -x $1/bin/python ]] && "$1/bin/python" -c 'import numpy, faiss' 2>/dev/null; }
if [[ -z ${VENV:-} ]]; then
    VENV=$WORK/venv
    for v in /work/.venv-peers "$OUT_DIR/venv"; do
        if has_faiss "$v"; then VENV=$v; break; fi
    done
fi
if ! has_faiss "$VENV"; then
    log "creating Python venv $VENV (numpy, faiss-cpu==$FAISS_VERSION)"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --upgrade pip
    "$VENV/bin/pip" install --quiet numpy "faiss-cpu==$FAISS_VERSION"
fi
PY=$VENV/bin/python

if [[ ! -x $CORDON_SRC ]]; then
    log "building Cordon (cargo build --release -p cordon)"
    (cd "$REPO_DIR" && cargo build --release -p cordon)
fi
# A private copy, so that a rebuild of target/release during the run cannot mix versions.
mkdir -p "$WORK"
cp "$CORDON_SRC" "$WORK/cordon.bin.tmp" && mv "$WORK/cordon.bin.tmp" "$WORK/cordon.bin"
CORDON_BIN=$WORK/cordon.bin

"$PY" - "$WORK/meta.json" "$CORDON_SRC" "$CORDON_BIN" "$CORE" <<'EOF'
import hashlib, json, os, platform, sys, time, numpy, faiss
out, src, binary, core = sys.argv[1:]
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "")
json.dump({
    "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    "cordon_binary": src,
    "cordon_sha256": hashlib.sha256(open(binary, "rb").read()).hexdigest(),
    "cordon_mtime": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(os.stat(src).st_mtime)),
    "faiss": faiss.__version__, "numpy": numpy.__version__, "python": platform.python_version(),
    "cpu": cpu, "cores": os.cpu_count(), "pinned_core": int(core),
    "mem_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
    "loadavg_start": os.getloadavg(),
}, open(out, "w"), indent=1)
EOF

# --- setup: hashes and the Cordon data folder (cached) --------------------------------------
now_s() { date +%s.%N; }
sub() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a - b }'; }

# bench/out/index/N/{bank,queries}.{npy,txt}, made by the shared make_hashes.py (seeded),
# stamped by hashes.json; kept while N, the query count and the generator are unchanged.
prepare_hashes() {
    local n=$1 dir=$WORK/$1 gen_sha
    gen_sha=$(sha256sum "$PEERS/make_hashes.py" | cut -d' ' -f1)
    mkdir -p "$dir"
    if [[ -f $dir/hashes.json ]] && "$PY" - "$dir" "$n" "$QUERIES" "$gen_sha" <<'EOF'
import json, os, sys
d, n, q, sha = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
m = json.load(open(f"{d}/hashes.json"))
files = all(os.path.exists(f"{d}/{f}") for f in ("bank.npy", "queries.npy", "bank.txt", "queries.txt"))
sys.exit(0 if files and (m["n"], m["queries"], m["generator_sha256"]) == (n, q, sha) else 1)
EOF
    then
        log "hashes for N=$n: cached in $dir"
        return
    fi
    log "making $n bank hashes and $QUERIES queries (make_hashes.py) into $dir"
    rm -f "$dir/hashes.json" "$dir"/queries-*.npy
    local t0 t1
    t0=$(now_s)
    pin "$PY" "$PEERS/make_hashes.py" "$dir" "$n" "$QUERIES"
    t1=$(now_s)
    "$PY" - "$dir" "$n" "$QUERIES" "$gen_sha" "$t0" "$t1" <<'EOF'
import json, sys, time
d, n, q, sha, t0, t1 = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], float(sys.argv[5]), float(sys.argv[6])
json.dump({"n": n, "queries": q, "generator_sha256": sha, "made_at": time.time(),
           "make_s": round(t1 - t0, 2)}, open(f"{d}/hashes.json", "w"), indent=1)
EOF
}

# bench/out/index/N/cordon-data with the one bank INDEX_BENCH (threshold RADIUS) holding
# bank.txt; kept when it holds exactly those N hashes (import.json records which hashes).
prepare_cordon() {
    local n=$1 dir=$WORK/$1 data=$WORK/$1/cordon-data
    if [[ -f $data/import.json ]] &&
        "$CORDON_BIN" --data "$data" bank list 2>/dev/null |
        "$PY" -c '
import json, sys
d, n, r, bank = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
banks = [json.loads(l) for l in sys.stdin if l.strip()]
made = json.load(open(f"{d}/hashes.json"))["made_at"]
imp = json.load(open(f"{d}/cordon-data/import.json"))
ok = (len(banks) == 1 and banks[0]["name"] == bank and banks[0]["content_count"] == n
      and banks[0]["thresholds"]["pdq"] == r and banks[0]["enabled"] and imp["made_at"] == made)
sys.exit(0 if ok else 1)' "$dir" "$n" "$RADIUS" "$BANK"
    then
        log "Cordon data for N=$n: already imported in $data"
        return
    fi
    log "importing $n hashes into Cordon ($data); one SQLite transaction, may take minutes"
    rm -rf "$data"
    mkdir -p "$data"
    pin "$CORDON_BIN" --data "$data" bank create "$BANK" --pdq-threshold "$RADIUS" >/dev/null
    local t0 t1
    t0=$(now_s)
    pin /usr/bin/time -v -o "$dir/import.time" \
        "$CORDON_BIN" --data "$data" bank import "$BANK" "$dir/bank.txt" >"$dir/import.out"
    t1=$(now_s)
    "$PY" - "$dir" "$t0" "$t1" <<'EOF'
import json, os, re, sys
d, t0, t1 = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", open(f"{d}/import.time").read())
db = sum(os.path.getsize(os.path.join(d, "cordon-data", f)) for f in os.listdir(f"{d}/cordon-data"))
json.dump({"made_at": json.load(open(f"{d}/hashes.json"))["made_at"], "import_s": round(t1 - t0, 2),
           "peak_rss_kb": int(rss.group(1)) if rss else None, "data_bytes": db,
           "result": json.loads(open(f"{d}/import.out").read())},
          open(f"{d}/cordon-data/import.json", "w"), indent=1)
EOF
    log "import took $(sub "$t1" "$t0") s"
}

# queries-K.npy: the first K queries (they are shuffled, so a fair mix of near and random)
query_subset() {
    local dir=$1 k=$2
    if [[ $k -ge $QUERIES ]]; then echo "$dir/queries.npy"; return; fi
    if [[ ! -f $dir/queries-$k.npy ]]; then
        "$PY" -c 'import sys, numpy as np; np.save(sys.argv[2], np.load(sys.argv[1])[:int(sys.argv[3])])' \
            "$dir/queries.npy" "$dir/queries-$k.npy" "$k"
    fi
    echo "$dir/queries-$k.npy"
}

# --- timed runs ---------------------------------------------------------------------------
# run_one N TOOL REP: whole process under /usr/bin/time -v (peak RSS) on core $CORE;
# runs/TOOL-REP.{out,err,time,wall} (+ .timings.json for the faiss peers).
run_one() {
    local n=$1 tool=$2 rep=$3 dir=$WORK/$1 base t0 t1 nq
    base=$dir/runs/$tool-$rep
    case $tool in
        cordon) nq=$QUERIES ;;
        mih) nq=$MIH_Q ;;
        flat) nq=$FLAT_Q ;;
    esac
    local cmd=()
    case $tool in
        cordon) cmd=("$CORDON_BIN" --data "$dir/cordon-data" match --hashes "$dir/queries.txt" --threads 1 --stats) ;;
        mih) cmd=(env OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 "$PY" "$BENCH_DIR/timed.py" "$base.timings.json"
                  "$PEERS/faiss_match.py" "$dir/bank.npy" "$(query_subset "$dir" "$nq")" "$RADIUS") ;;
        flat) cmd=(env OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 "$PY" "$BENCH_DIR/timed.py" "$base.timings.json"
                   "$BENCH_DIR/faiss_flat.py" "$dir/bank.npy" "$(query_subset "$dir" "$nq")" "$RADIUS"
                   --ids "$base.ids") ;;
    esac
    log "N=$n $tool rep $rep ($nq queries)"
    t0=$(now_s)
    pin /usr/bin/time -v -o "$base.time" "${cmd[@]}" >"$base.out" 2>"$base.err"
    t1=$(now_s)
    printf '{"wall_s": %s, "queries": %s}\n' "$(sub "$t1" "$t0")" "$nq" >"$base.wall"
    log "   $(sub "$t1" "$t0") s"
}

started=$(now_s)
for n in $SIZES; do
    dir=$WORK/$n
    prepare_hashes "$n"
    if [[ " $TOOLS " == *" cordon "* ]]; then prepare_cordon "$n"; fi
    if [[ $n -ge $BIG ]]; then
        peer_reps=$REPS_BIG; MIH_Q=$MIH_QUERIES_BIG; FLAT_Q=$FLAT_QUERIES_BIG
    else
        peer_reps=$REPS; MIH_Q=$QUERIES; FLAT_Q=$QUERIES
    fi
    (( MIH_Q > QUERIES )) && MIH_Q=$QUERIES
    (( FLAT_Q > QUERIES )) && FLAT_Q=$QUERIES
    rm -rf "$dir/runs"
    mkdir -p "$dir/runs"
    # Warm the page cache: every tool reads its inputs from memory, none from disk.
    cat "$dir/bank.npy" "$dir/queries.npy" "$dir/queries.txt" "$dir"/cordon-data/* >/dev/null 2>&1 || true
    "$PY" -c 'import json, os, sys; json.dump({"loadavg_before": os.getloadavg(), "reps": int(sys.argv[1]), "peer_reps": int(sys.argv[2]), "mih_queries": int(sys.argv[3]), "flat_queries": int(sys.argv[4]), "queries": int(sys.argv[5]), "radius": int(sys.argv[6])}, open(sys.argv[7], "w"))' \
        "$REPS" "$peer_reps" "$MIH_Q" "$FLAT_Q" "$QUERIES" "$RADIUS" "$dir/runs/meta.json"
    max_reps=$(( REPS > peer_reps ? REPS : peer_reps ))
    # Interleaved: rep 1 of every tool, then rep 2, ... so slow drifts hit all tools alike.
    for rep in $(seq 1 "$max_reps"); do
        for tool in $TOOLS; do
            if [[ $tool == cordon ]]; then (( rep <= REPS )) || continue; else (( rep <= peer_reps )) || continue; fi
            run_one "$n" "$tool" "$rep"
        done
    done
    log "N=$n comparing result sets"
    "$PY" "$BENCH_DIR/compare.py" --dir "$dir" --radius "$RADIUS" --queries "$QUERIES" --out "$dir/runs/compare.json"
done

"$PY" "$BENCH_DIR/summarize.py" --work "$WORK" --sizes "$SIZES" \
    --md "$OUT_DIR/index-results.md" --json "$OUT_DIR/index-results.json"
log "done in $(sub "$(now_s)" "$started") s: $OUT_DIR/index-results.md"
