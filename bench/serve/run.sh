#!/usr/bin/env bash
# HTTP load benchmark of `cordon serve`: GET /m/lookup against a 1 M-hash bank (wrk), and
# POST /v1/submissions with ~1 MP JPEGs at a fixed rate with a local webhook receiver.
# See README.md next to this file.
#
#   bench/serve/run.sh          # setup on first run (cached in bench/out/serve), then both tests
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$BENCH_DIR/../.." && pwd)
OUT_DIR=${OUT_DIR:-$REPO_DIR/bench/out}
WORK=$OUT_DIR/serve
INDEX_DIR=${INDEX_DIR:-$OUT_DIR/index/1000000}   # cordon-data, queries.txt of the index bench
PHOTO_SRC=${PHOTO_SRC:-$OUT_DIR/inputs/corpus}
CORDON_SRC=${CORDON:-$REPO_DIR/target/release/cordon}
PORT=${PORT:-18080}
HOOK_PORT=${HOOK_PORT:-18081}
# lookup runs, each THREADS:CONNECTIONS:SECONDS for wrk; the first is the headline
LOOKUP_RUNS=${LOOKUP_RUNS:-"2:64:25 1:32:20 1:8:15"}
RATE=${RATE:-50}                 # submissions per second, open loop
SUBMIT_SECONDS=${SUBMIT_SECONDS:-30}
CLOSED=${CLOSED:-"2 4"}          # closed-loop concurrencies for max submission throughput
CLOSED_SECONDS=${CLOSED_SECONDS:-10}
VENV=${VENV:-}                   # Python with Pillow (only for making the photos); see below

log() { printf '== %s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

command -v wrk >/dev/null || {
    log "installing wrk"
    if [[ $(id -u) == 0 ]]; then apt-get install -y -qq wrk >&2; else sudo apt-get install -y -qq wrk >&2; fi
}
[[ -x $CORDON_SRC ]] || (cd "$REPO_DIR" && cargo build --release -p cordon)
mkdir -p "$WORK"
CORDON=$WORK/cordon.bin          # a private copy: rebuilds during the run don't touch it
cp "$CORDON_SRC" "$CORDON"
DATA=$WORK/cordon-data

# --- setup (cached) ----------------------------------------------------------------------
if [[ ! -f $WORK/setup.done ]]; then
    [[ -f $INDEX_DIR/cordon-data/cordon.sqlite3 ]] || {
        echo "no $INDEX_DIR/cordon-data: run bench/index/run.sh (SIZES=1000000) first" >&2; exit 1; }
    log "copying the 1 M-hash data folder to $DATA"
    rm -rf "$DATA" "$WORK/photos"
    cp -r "$INDEX_DIR/cordon-data" "$DATA"
    log "making ~1 MP JPEGs from $PHOTO_SRC"
    # $VENV, else the shared peers' venv, else the PDQ benchmark's, else the system Python.
    PY=python3
    for candidate in ${VENV:+"$VENV/bin/python"} /work/.venv-peers/bin/python "$OUT_DIR/venv/bin/python"; do
        if "$candidate" -c 'import PIL' 2>/dev/null; then PY=$candidate; break; fi
    done
    "$PY" "$BENCH_DIR/make_photos.py" "$WORK/photos" "$PHOTO_SRC"
    "$CORDON" hash "$WORK"/photos/*.jpg > "$WORK/photos.hashes.jsonl"
    # every second photo (by name) is "known": its hash goes into bank BENCH
    python3 - "$WORK/photos.hashes.jsonl" > "$WORK/bench-bank.tx" <<'PY'
import json, sys
rows = sorted((json.loads(l) for l in open(sys.argv[1])), key=lambda r: r["path"])
sys.stdout.write("".join(f"pdq {r['hash']}\n" for i, r in enumerate(rows) if i % 2 == 0))
PY
    "$CORDON" --data "$DATA" bank create BENCH >/dev/null
    "$CORDON" --data "$DATA" bank import BENCH "$WORK/bench-bank.tx" >&2
    "$CORDON" --data "$DATA" keys create --role submitter --name bench-serve \
        | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])' > "$WORK/key"
    "$CORDON" --data "$DATA" keys create --role admin --name bench-serve-admin \
        | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])' > "$WORK/admin.key"
    touch "$WORK/setup.done"
fi
KEY=$(cat "$WORK/key")
cat > "$WORK/cordon.toml" <<TOML
[[webhooks]]
name = "bench"
url = "http://127.0.0.1:$HOOK_PORT/hook"
secret = "bench-secret"

[[rules]]
name = "known"
banks = ["BENCH"]
max_distance = 31
actions = ["remove"]
TOML

# --- server ------------------------------------------------------------------------------
SERVER_PID=
stop_server() { [[ -n $SERVER_PID ]] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null; SERVER_PID=; }
trap stop_server EXIT
log "starting cordon serve on 127.0.0.1:$PORT"
"$CORDON" --data "$DATA" serve --listen "127.0.0.1:$PORT" --quiet --config "$WORK/cordon.toml" \
    2> "$WORK/server.log" &
SERVER_PID=$!
for _ in $(seq 300); do curl -sf "http://127.0.0.1:$PORT/status" >/dev/null && break; sleep 0.1; done
curl -sf "http://127.0.0.1:$PORT/status" >/dev/null || { cat "$WORK/server.log" >&2; exit 1; }
RSS_START=$(awk '/VmRSS/ {print $2}' /proc/$SERVER_PID/status)

cpu_ticks() { awk '{print $14 + $15}' "/proc/$SERVER_PID/stat"; }   # utime + stime

# --- 1. lookups --------------------------------------------------------------------------
QUERIES=$INDEX_DIR/queries.txt
python3 "$BENCH_DIR/lookup_check.py" "http://127.0.0.1:$PORT" "$KEY" "$QUERIES" 1000 > "$WORK/lookup-check.json"
log "lookup sanity check: $(cat "$WORK/lookup-check.json")"
log "wrk warm-up (3 s)"
CORDON_KEY=$KEY QUERIES=$QUERIES wrk -t1 -c16 -d3s -s "$BENCH_DIR/../lookup.lua" "http://127.0.0.1:$PORT" >/dev/null
rm -f "$WORK"/lookup-t*.json "$WORK"/lookup-t*.txt
for run in $LOOKUP_RUNS; do
    IFS=: read -r t c d <<<"$run"
    name=lookup-t$t-c$c
    log "wrk -t$t -c$c -d${d}s GET /m/lookup"
    before=$(cpu_ticks); t0=$(date +%s.%N)
    CORDON_KEY=$KEY QUERIES=$QUERIES WRK_JSON=$WORK/$name.json \
        wrk -t"$t" -c"$c" -d"${d}s" --latency -s "$BENCH_DIR/../lookup.lua" "http://127.0.0.1:$PORT" \
        > "$WORK/$name.txt"
    after=$(cpu_ticks); t1=$(date +%s.%N)
    python3 - "$WORK/$name.json" "$t" "$c" "$before" "$after" "$t0" "$t1" "$(getconf CLK_TCK)" "$WORK/$name.txt" <<'PY'
import json, re, sys
path, t, c, before, after, t0, t1, hz, txt = sys.argv[1:]
doc = json.load(open(path))
doc["threads"], doc["connections"] = int(t), int(c)
doc["server_cpu_cores"] = round((int(after) - int(before)) / int(hz) / (float(t1) - float(t0)), 2)
m = re.search(r"Non-2xx or 3xx responses: (\d+)", open(txt).read())
doc["non_2xx"] = int(m.group(1)) if m else 0
json.dump(doc, open(path, "w"), indent=2)
PY
    cat "$WORK/$name.txt" >&2
done

RSS_MID=$(awk '/VmRSS/ {print $2}' /proc/$SERVER_PID/status)

# --- 2. submissions ----------------------------------------------------------------------
log "submissions: open loop $RATE/s for ${SUBMIT_SECONDS}s, then closed loop ($CLOSED) ${CLOSED_SECONDS}s each"
python3 "$BENCH_DIR/submit_load.py" --url "http://127.0.0.1:$PORT" --key "$KEY" --photos "$WORK/photos" \
    --hook-port "$HOOK_PORT" --secret bench-secret --rate "$RATE" --duration "$SUBMIT_SECONDS" \
    --closed "$CLOSED" --closed-duration "$CLOSED_SECONDS" --admin-key "$(cat "$WORK/admin.key")" --out "$WORK/submit.json"
RSS_END=$(awk '/VmRSS/ {print $2}' /proc/$SERVER_PID/status)
curl -s -H "Authorization: Bearer $(cat "$WORK/admin.key")" "http://127.0.0.1:$PORT/v1/outbox" > "$WORK/outbox.json" || true
stop_server

# --- report ------------------------------------------------------------------------------
python3 "$BENCH_DIR/summarize.py" --work "$WORK" --rss-start-kb "$RSS_START" --rss-mid-kb "$RSS_MID" --rss-end-kb "$RSS_END" \
    --md "$OUT_DIR/serve-results.md" --json "$OUT_DIR/serve-results.json"
log "wrote $OUT_DIR/serve-results.md and .json"
cat "$OUT_DIR/serve-results.md"
