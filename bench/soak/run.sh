#!/usr/bin/env bash
# Soak test of `cordon serve`: 10 minutes of a steady mix of lookups, submissions and bank
# changes (each open loop at a fixed rate) against a fresh data folder, with a webhook
# receiver and RSS samples; fails on any error, lost or duplicated webhook, or memory
# growth after warm-up. Not run by CI. See README.md next to this file.
#
#   bench/soak/run.sh                 # 600 s (plus ~1 min of setup; ~2 min more the first time)
#   bench/soak/run.sh --seconds 60    # a short run (or DURATION=60)
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$BENCH_DIR/../.." && pwd)
DURATION=${DURATION:-600}
while [[ $# -gt 0 ]]; do
    case $1 in
        --seconds) DURATION=$2; shift 2 ;;
        --seconds=*) DURATION=${1#*=}; shift ;;
        -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
        *) echo "unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
OUT_DIR=${OUT_DIR:-$REPO_DIR/bench/out}
WORK=$OUT_DIR/soak
PHOTO_SRC=${PHOTO_SRC:-$OUT_DIR/inputs/corpus}
PHOTOS=${PHOTOS:-800}              # distinct photos submitted (half of them banked)
BANK_SIZE=${BANK_SIZE:-5000}       # random hashes imported into the bank besides the photos'
LOOKUP_RATE=${LOOKUP_RATE:-300}    # lookups per second
SUBMIT_RATE=${SUBMIT_RATE:-20}     # submissions per second
BANK_RATE=${BANK_RATE:-2}          # bank-change cycles per second (~2.7 changes each)
ACCOUNTS=${ACCOUNTS:-500}
RSS_LIMIT_PCT=${RSS_LIMIT_PCT:-10}
WARMUP=${WARMUP:-}                 # seconds before the RSS baseline (default 60, a fifth of shorter runs)
PORT=${PORT:-18090}
HOOK_PORT=${HOOK_PORT:-18091}
VENV=${VENV:-/work/.venv-peers}    # Python with Pillow (only for making the photos)
MIN_HITS=20                        # the flood guard's default, written into cordon.toml

log() { printf '== %s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# --- the binary: built when stale, unless CORDON names one ---------------------------------
if [[ -n ${CORDON:-} ]]; then
    CORDON_SRC=$CORDON
else
    log "cargo build --release -p cordon (a no-op when up to date)"
    (cd "$REPO_DIR" && cargo build --release -p cordon --quiet)
    CORDON_SRC=$REPO_DIR/target/release/cordon
fi
mkdir -p "$WORK"
BIN=$WORK/cordon.bin               # a private copy: rebuilds during the run don't touch it
[[ $CORDON_SRC -ef $BIN ]] || cp "$CORDON_SRC" "$BIN"
# what was tested: the commit, and whether the working tree had changes when it was built
python3 - "$BIN" "$CORDON_SRC" "$REPO_DIR" > "$WORK/build.json" <<'PY'
import hashlib, json, os, subprocess, sys, time
binary, source, repo = sys.argv[1:]
git = lambda *a: subprocess.run(["git", "-C", repo, *a], capture_output=True, text=True).stdout.strip()
print(json.dumps({
    "binary_sha256": hashlib.sha256(open(binary, "rb").read()).hexdigest()[:16],
    "binary_built": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(os.path.getmtime(source))),
    "commit": git("rev-parse", "--short", "HEAD"),
    "changed_files_in_tree": len(git("status", "--porcelain", "--untracked-files=no").splitlines()),
}))
PY

# --- photos (cached: slow to make) ------------------------------------------------------------
if [[ ! -f $WORK/photos/photos.jsonl || $(wc -l < "$WORK/photos/photos.jsonl") -ne $PHOTOS ]]; then
    log "making $PHOTOS ~1 MP photos from $PHOTO_SRC"
    rm -rf "$WORK/photos"
    PY=$VENV/bin/python; "$PY" -c 'import PIL' 2>/dev/null || PY=python3
    "$PY" "$BENCH_DIR/make_photos.py" --cordon "$BIN" --out "$WORK/photos" --count "$PHOTOS" "$PHOTO_SRC"
fi

# --- a fresh data folder ----------------------------------------------------------------------
DATA=$WORK/data
rm -rf "$DATA" "$WORK"/summary.* "$WORK"/server.log
log "fresh data folder $DATA: bank SOAK with $BANK_SIZE random hashes + every second photo"
python3 - "$WORK/photos/photos.jsonl" "$BANK_SIZE" "$WORK/bank.tx" <<'PY'
import json, random, sys
photos = [json.loads(l) for l in open(sys.argv[1])]
rng = random.Random(7)
lines = [f"pdq {rng.getrandbits(256):064x}\n" for _ in range(int(sys.argv[2]))]
lines += [f"pdq {p['hash']}\n" for i, p in enumerate(photos) if i % 2 == 0]
open(sys.argv[3], "w").write("".join(lines))
PY
"$BIN" --data "$DATA" bank create SOAK >/dev/null
"$BIN" --data "$DATA" bank import SOAK "$WORK/bank.tx" >&2
for role in submitter curator admin; do
    "$BIN" --data "$DATA" keys create --role $role --name soak-$role \
        | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])' > "$WORK/$role.key"
done

# Every photo must do what the soak expects of it: a banked photo matches its own entry
# and nothing else, any other photo matches nothing (PDQ in all orientations, as the
# server looks up). Photos that do not are left out (none, so far).
log "checking what each photo matches (cordon match --dihedral)"
"$BIN" --data "$DATA" match --dihedral --no-features "$WORK"/photos/*.jpg > "$WORK/photos.match.jsonl"
python3 - "$WORK/photos/photos.jsonl" "$WORK/photos.match.jsonl" "$WORK/photos.jsonl" <<'PY'
import json, os, sys
photos = [json.loads(l) for l in open(sys.argv[1])]
found = {os.path.basename(r["path"]): r for r in map(json.loads, open(sys.argv[2]))}
bad = 0
for i, p in enumerate(photos):
    p["banked"] = i % 2 == 0
    matches = found[p["name"]].get("matches", [])
    ok = len(matches) == 1 and matches[0].get("distance") == 0 if p["banked"] else not matches
    if not ok:
        p["excluded"] = True
        bad += 1
        print(f"left out {p['name']} (banked={p['banked']}): {matches}", file=sys.stderr)
open(sys.argv[3], "w").write("".join(json.dumps(p) + "\n" for p in photos))
print(f"{len(photos) - bad} photos usable, {bad} left out", file=sys.stderr)
PY

# The flood guard quarantines an entry at MIN_HITS matches in a 10-minute window (it has
# no history in a fresh folder). Each banked photo's entry is matched rate*duration/photos
# times in the whole run; keep that below MIN_HITS so the default guard sees no flood.
USABLE=$(python3 -c 'import json,sys; print(sum(1 for l in open(sys.argv[1]) if not json.loads(l).get("excluded")))' "$WORK/photos.jsonl")
PER_ENTRY=$(python3 -c "import math; print(math.ceil($SUBMIT_RATE * $DURATION / $USABLE))")
if (( PER_ENTRY >= MIN_HITS )); then
    echo "each banked photo would be submitted $PER_ENTRY times (flood guard min_hits $MIN_HITS):" \
         "raise PHOTOS or lower SUBMIT_RATE" >&2
    exit 2
fi

cat > "$WORK/cordon.toml" <<TOML
[[webhooks]]
name = "soak"
url = "http://127.0.0.1:$HOOK_PORT/hook"
secret = "soak-secret"

[[rules]]
name = "soak-known"
banks = ["SOAK"]
max_distance = 31
actions = ["remove", "strike"]

[strikes]
warn_at = 2
suspend_at = 5
window_days = 1

# The defaults, written out: the soak spreads its matches so that this never trips.
[flood_guard]
enabled = true
window_minutes = 10
history_hours = 24
min_hits = $MIN_HITS
factor = 10
TOML

# --- server -------------------------------------------------------------------------------------
SERVER_PID=
stop_server() {
    if [[ -n $SERVER_PID ]]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
    SERVER_PID=
}
trap stop_server EXIT
log "starting cordon serve on 127.0.0.1:$PORT"
"$BIN" --data "$DATA" serve --listen "127.0.0.1:$PORT" --quiet --config "$WORK/cordon.toml" \
    2> "$WORK/server.log" &
SERVER_PID=$!
for _ in $(seq 300); do curl -sf "http://127.0.0.1:$PORT/status" >/dev/null && break; sleep 0.1; done
curl -sf "http://127.0.0.1:$PORT/status" >/dev/null || { cat "$WORK/server.log" >&2; exit 1; }

log "soak: ${DURATION}s at $LOOKUP_RATE lookups/s, $SUBMIT_RATE submissions/s, $BANK_RATE bank cycles/s"
set +e
python3 "$BENCH_DIR/soak.py" --url "http://127.0.0.1:$PORT" --server-pid "$SERVER_PID" --data "$DATA" \
    --submitter-key "$(cat "$WORK/submitter.key")" --curator-key "$(cat "$WORK/curator.key")" \
    --admin-key "$(cat "$WORK/admin.key")" --bank SOAK --bank-hashes "$WORK/bank.tx" \
    --photos "$WORK/photos" --photo-list "$WORK/photos.jsonl" --hook-port "$HOOK_PORT" --secret soak-secret \
    --seconds "$DURATION" --lookup-rate "$LOOKUP_RATE" --submit-rate "$SUBMIT_RATE" --bank-rate "$BANK_RATE" \
    --accounts "$ACCOUNTS" --rss-limit-pct "$RSS_LIMIT_PCT" --build-info "$WORK/build.json" \
    ${WARMUP:+--warmup-seconds "$WARMUP"} \
    --out "$WORK/summary.json" --md "$WORK/summary.md"
rc=$?
set -e
curl -s "http://127.0.0.1:$PORT/metrics" > "$WORK/metrics.txt" || true
alive=1; kill -0 "$SERVER_PID" 2>/dev/null || alive=0
stop_server
if (( !alive )); then echo "the server died during the soak; see $WORK/server.log" >&2; rc=1; fi
if grep -qi panic "$WORK/server.log"; then echo "the server log holds a panic: $WORK/server.log" >&2; rc=1; fi
log "server log: $(wc -l < "$WORK/server.log") lines ($WORK/server.log)"
log "wrote $WORK/summary.json and $WORK/summary.md"
exit $rc
