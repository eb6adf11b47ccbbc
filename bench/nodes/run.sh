#!/usr/bin/env bash
# Several `cordon serve` nodes on one PostgreSQL: lookups per second with 1, 2 and 3 nodes
# (wrk, one per node, run together), each node's start time and memory with 1 M hashes,
# the time for a new hash to be live on every node (through the API and through the CLI),
# changes through every node at once, and closed-loop submissions (what the store lets
# through). See README.md next to this file.
#
#   bench/nodes/run.sh          # setup on first run (cached in bench/out/nodes), then the tests
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$BENCH_DIR/../.." && pwd)
OUT_DIR=${OUT_DIR:-$REPO_DIR/bench/out}
WORK=$OUT_DIR/nodes
INDEX_DIR=${INDEX_DIR:-$OUT_DIR/index/1000000}   # bank.txt, queries.txt (and cordon-data) of the index bench
CORDON_SRC=${CORDON:-$REPO_DIR/target/release/cordon}
PG_PORT=${PG_PORT:-15433}
BASE_PORT=${BASE_PORT:-18090}    # node i listens on BASE_PORT + i
NODE_COUNTS=${NODE_COUNTS:-"1 2 3"}
CONNECTIONS=${CONNECTIONS:-32}   # total wrk connections of every run, split over the nodes
DURATION=${DURATION:-20}         # seconds per lookup run
WARMUP=${WARMUP:-3}
TTL_REPS=${TTL_REPS:-50}         # new hashes through the API
CLI_REPS=${CLI_REPS:-50}         # new hashes through `cordon bank import`
CONCURRENT_REPS=${CONCURRENT_REPS:-50}  # then hashes added through every node at once, per node
POLL_MS=${POLL_MS:-1}            # pause between two polls of one node in the time-to-live test
SUBMIT_RUNS=${SUBMIT_RUNS:-"1:4 3:12"}  # closed-loop submissions, NODES:SENDERS each ("" for none)
SUBMIT_SECONDS=${SUBMIT_SECONDS:-10}
FSYNC_TEST=${FSYNC_TEST:-1}      # 1: run pg_test_fsync on the benchmark's disk first (~30 s)
BASELINE=${BASELINE:-1}          # 1: also one node on a SQLite store (the index bench's 1 M data folder)
BANK=BENCH

log() { printf '== %s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
as_root() { if [[ $(id -u) == 0 ]]; then "$@"; else sudo "$@"; fi; }

command -v wrk >/dev/null || { log "installing wrk"; as_root apt-get install -y -qq wrk >&2; }
[[ -x /usr/bin/time ]] || { log "installing GNU time"; as_root apt-get install -y -qq time >&2; }
TIME=/usr/bin/time
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[[ -x $PGBIN/postgres ]] || { log "installing postgresql"; as_root apt-get install -y -qq postgresql >&2;
    PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1); }
[[ -x $CORDON_SRC ]] || (cd "$REPO_DIR" && cargo build --release -p cordon)
[[ -f $INDEX_DIR/bank.txt && -f $INDEX_DIR/queries.txt ]] || {
    echo "no $INDEX_DIR/{bank,queries}.txt: run SIZES=1000000 bench/index/run.sh first" >&2; exit 1; }
mkdir -p "$WORK"
CORDON=$WORK/cordon.bin          # a private copy: rebuilds during the run don't touch it
cp "$CORDON_SRC" "$CORDON.tmp" && mv "$CORDON.tmp" "$CORDON"
QUERIES=$INDEX_DIR/queries.txt
cd "$WORK"                       # the CLI's default ./cordon-data, if any, lands here

python3 - "$WORK/meta.json" "$REPO_DIR" "$CORDON_SRC" "$PGBIN" <<'PY'
import json, os, subprocess, sys, time
out, repo, src, pgbin = sys.argv[1:]
git = lambda *a: subprocess.run(["git", "-C", repo, *a], capture_output=True, text=True).stdout.strip()
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "")
json.dump({"started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "commit": git("rev-parse", "--short", "HEAD"),
           "dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
           "nproc": os.cpu_count(), "cpu": cpu,
           "mem_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
           "loadavg_start": list(os.getloadavg()), "cordon_binary": src,
           "cordon_mtime": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(os.stat(src).st_mtime)),
           "postgres": subprocess.run([f"{pgbin}/postgres", "--version"], capture_output=True, text=True).stdout.strip()},
          open(out, "w"), indent=1)
PY

# --- PostgreSQL ---------------------------------------------------------------------------
PGDIR=$WORK/pg
PGDATA=$PGDIR/data
as_pg() { if [[ $(id -u) == 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi; }
NODE_PIDS=()
cleanup() {
    for pid in "${NODE_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${NODE_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    if [[ -f $PGDATA/postmaster.pid ]]; then
        as_pg "$PGBIN/pg_ctl" -D "$PGDATA" stop -m fast -w >/dev/null 2>&1 || true
    fi
}
trap cleanup EXIT
if [[ -f $PGDATA/postmaster.pid ]]; then     # left by an interrupted run
    as_pg "$PGBIN/pg_ctl" -D "$PGDATA" stop -m fast -w >/dev/null 2>&1 || rm -f "$PGDATA/postmaster.pid"
fi
if [[ ! -f $PGDATA/PG_VERSION ]]; then
    log "initdb $PGDATA"
    rm -rf "$PGDIR" "$WORK/setup.done"
    mkdir -p "$PGDIR"
    [[ $(id -u) == 0 ]] && chown postgres:postgres "$PGDIR"
    as_pg "$PGBIN/initdb" -D "$PGDATA" -A trust -U cordon -E UTF8 --locale=C >"$WORK/initdb.log"
fi
# Default durability (fsync, synchronous_commit, full_page_writes on) and memory
# (shared_buffers 128 MB); only where it listens is set.
log "starting PostgreSQL ($("$PGBIN/postgres" --version)) on 127.0.0.1:$PG_PORT"
as_pg "$PGBIN/postgres" -D "$PGDATA" -k "$PGDIR" -h 127.0.0.1 -p "$PG_PORT" >"$PGDIR/postgres.log" 2>&1 &
for _ in $(seq 300); do "$PGBIN/pg_isready" -q -U cordon -h 127.0.0.1 -p "$PG_PORT" && break; sleep 0.1; done
"$PGBIN/pg_isready" -q -U cordon -h 127.0.0.1 -p "$PG_PORT" || { cat "$PGDIR/postgres.log" >&2; exit 1; }
POSTMASTER=$(head -n 1 "$PGDATA/postmaster.pid")
psql() { "$PGBIN/psql" -X -q -At -h 127.0.0.1 -p "$PG_PORT" -U cordon "$@"; }
psql -d postgres -c "SELECT json_object_agg(name, setting || coalesce(unit, '')) FROM pg_settings WHERE name IN
    ('fsync','synchronous_commit','full_page_writes','shared_buffers','wal_level','max_connections','checkpoint_timeout','max_wal_size')" \
    > "$WORK/pg-settings.json"
URL=postgres://cordon@127.0.0.1:$PG_PORT/bench
if [[ $FSYNC_TEST == 1 ]]; then   # how fast this disk flushes: bounds commits that run one at a time
    log "pg_test_fsync (2 s per test) on $WORK"
    "$PGBIN/pg_test_fsync" -s 2 -f "$WORK/fsync.test" >"$WORK/pg_test_fsync.txt" 2>&1 || true
    rm -f "$WORK/fsync.test"
else
    rm -f "$WORK/pg_test_fsync.txt"
fi

# --- setup (cached) ----------------------------------------------------------------------
if [[ ! -f $WORK/setup.done ]]; then
    log "database 'bench': bank $BANK with the $(wc -l <"$INDEX_DIR/bank.txt") hashes of $INDEX_DIR/bank.txt"
    psql -d postgres -c "DROP DATABASE IF EXISTS bench" -c "CREATE DATABASE bench"
    "$CORDON" --store "$URL" bank create "$BANK" >/dev/null
    t0=$(date +%s.%N)
    "$CORDON" --store "$URL" bank import "$BANK" "$INDEX_DIR/bank.txt" >"$WORK/import.out"
    t1=$(date +%s.%N)
    python3 - "$WORK/import.json" "$t0" "$t1" "$WORK/import.out" <<'PY'
import json, sys
out, t0, t1, res = sys.argv[1:]
json.dump({"import_s": round(float(t1) - float(t0), 2), "result": open(res).read().strip()}, open(out, "w"), indent=1)
PY
    log "imported in $(python3 -c "import json; print(json.load(open('$WORK/import.json'))['import_s'])") s"
    "$CORDON" --store "$URL" keys create --role admin --name bench \
        | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])' >"$WORK/admin.key"
    touch "$WORK/setup.done"
fi
KEY=$(cat "$WORK/admin.key")
psql -d bench -c "SELECT json_build_object('database_bytes', pg_database_size('bench'),
    'content', (SELECT count(*) FROM content), 'signal', (SELECT count(*) FROM signal), 'change_log', (SELECT count(*) FROM change_log))" \
    >"$WORK/pg-size.json" 2>/dev/null || echo '{}' >"$WORK/pg-size.json"

# outputs of an earlier run that this one might not overwrite
rm -f "$WORK"/lookup-*.* "$WORK"/submit-*.* "$WORK"/ttl.* "$WORK"/*.start.json "$WORK"/index-status.jsonl

# --- helpers -----------------------------------------------------------------------------
# start_node NAME PORT STORE_ARGS...: starts a node, waits for /status, appends its pid to
# NODE_PIDS and writes NAME.start.json (seconds from exec to the first 200 on /status).
start_node() {
    local name=$1 port=$2; shift 2
    local t0 t1 pid
    t0=$(date +%s.%N)
    "$CORDON" "$@" serve --listen "127.0.0.1:$port" --quiet 2>"$WORK/$name.log" &
    pid=$!
    NODE_PIDS+=("$pid")
    for _ in $(seq 6000); do
        curl -sf -o /dev/null "http://127.0.0.1:$port/status" && break
        kill -0 "$pid" 2>/dev/null || { cat "$WORK/$name.log" >&2; exit 1; }
        sleep 0.02
    done
    t1=$(date +%s.%N)
    curl -sf -o /dev/null "http://127.0.0.1:$port/status" || { cat "$WORK/$name.log" >&2; exit 1; }
    python3 - "$WORK/$name.start.json" "$name" "$pid" "$port" "$t0" "$t1" "$WORK/$name.log" <<'PY'
import json, re, sys
out, name, pid, port, t0, t1, logf = sys.argv[1:]
rss = next(int(l.split()[1]) for l in open(f"/proc/{pid}/status") if l.startswith("VmRSS"))
m = re.search(r"\((\d+) PDQ hashes loaded\)", open(logf).read())
json.dump({"name": name, "pid": int(pid), "port": int(port), "start_s": round(float(t1) - float(t0), 3),
           "hashes_loaded": int(m.group(1)) if m else None, "rss_kb_after_start": rss}, open(out, "w"), indent=1)
PY
    log "$name (pid $pid) on :$port ready in $(python3 -c "import json; d=json.load(open('$WORK/$name.start.json')); print(d['start_s'], 's,', d['hashes_loaded'], 'hashes, RSS', d['rss_kb_after_start']//1024, 'MB')")"
}

# lookup_run NAME PIDS PORT...: one wrk per port, run together, CONNECTIONS split over them.
lookup_run() {
    local name=$1 pids=$2; shift 2
    local ports=("$@") n=$# k c wrk_pids=()
    rm -f "$WORK/$name".*
    for k in "${!ports[@]}"; do         # warm-up, all nodes at once
        CORDON_KEY=$KEY QUERIES=$QUERIES wrk -t1 -c$((CONNECTIONS / n)) -d"${WARMUP}s" \
            -s "$BENCH_DIR/../lookup.lua" "http://127.0.0.1:${ports[k]}" >/dev/null &
        wrk_pids+=($!)
    done
    wait "${wrk_pids[@]}"; wrk_pids=()
    python3 "$BENCH_DIR/procstat.py" "$WORK/$name.before.json" --nodes "$pids" --postmaster "$POSTMASTER"
    python3 "$BENCH_DIR/stalls.py" "$WORK/$name.stalls.json" "$((DURATION - 1))" "$pids" &
    local watcher=$!
    for k in "${!ports[@]}"; do
        c=$((CONNECTIONS / n + (k < CONNECTIONS % n ? 1 : 0)))
        # GNU time: the wrk process's own CPU (user and system seconds)
        CORDON_KEY=$KEY QUERIES=$QUERIES OFFSET=$((k * 6007)) WRK_JSON=$WORK/$name.wrk$k.json \
            $TIME -f '{"user_s": %U, "sys_s": %S}' -o "$WORK/$name.wrk$k.cpu.json" \
            wrk -t1 -c"$c" -d"${DURATION}s" --latency -s "$BENCH_DIR/../lookup.lua" "http://127.0.0.1:${ports[k]}" \
            >"$WORK/$name.wrk$k.txt" &
        wrk_pids+=($!)
    done
    wait "${wrk_pids[@]}"
    python3 "$BENCH_DIR/procstat.py" "$WORK/$name.after.json" --nodes "$pids" --postmaster "$POSTMASTER"
    wait "$watcher"
    python3 - "$WORK" "$name" "$n" <<'PY'
import json, sys
work, name, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
docs = [json.load(open(f"{work}/{name}.wrk{k}.json")) for k in range(n)]
rps = sum(d["requests"] / d["duration_us"] * 1e6 for d in docs)
print(f"== {name}: {rps:,.0f} req/s over {n} node(s); per wrk p99 "
      + ", ".join(f"{d['latency_us']['p99'] / 1000:.2f} ms" for d in docs), file=sys.stderr)
PY
}

# --- 0. baseline: one node on SQLite -----------------------------------------------------
if [[ $BASELINE == 1 && -f $INDEX_DIR/cordon-data/cordon.sqlite3 ]]; then
    if [[ ! -f $WORK/sqlite-data/baseline.key ]]; then
        log "baseline: copying $INDEX_DIR/cordon-data to $WORK/sqlite-data"
        rm -rf "$WORK/sqlite-data"
        cp -r "$INDEX_DIR/cordon-data" "$WORK/sqlite-data"
        "$CORDON" --data "$WORK/sqlite-data" keys create --role admin --name bench \
            | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])' >"$WORK/sqlite-data/baseline.key"
    fi
    start_node sqlite-node $((BASE_PORT + 9)) --data "$WORK/sqlite-data"
    SQLITE_PID=${NODE_PIDS[-1]}
    KEY_SAVED=$KEY; KEY=$(cat "$WORK/sqlite-data/baseline.key")
    log "baseline: wrk, $CONNECTIONS connections, ${DURATION}s, one node on SQLite"
    lookup_run lookup-sqlite "$SQLITE_PID" $((BASE_PORT + 9))
    KEY=$KEY_SAVED
    kill "$SQLITE_PID"; wait "$SQLITE_PID" 2>/dev/null || true
    NODE_PIDS=()
fi

# --- 1. lookups with 1, 2, 3 nodes -------------------------------------------------------
PORTS=()
max_nodes=$(tr ' ' '\n' <<<"$NODE_COUNTS" | sort -n | tail -n 1)
for n in $NODE_COUNTS; do
    while (( ${#PORTS[@]} < n )); do
        i=$(( ${#PORTS[@]} + 1 ))
        start_node node$i $((BASE_PORT + i)) --data "$WORK/node$i-data" --store "$URL"
        PORTS+=($((BASE_PORT + i)))
    done
    pids=$(IFS=,; echo "${NODE_PIDS[*]:0:n}")
    log "lookups: $n node(s), wrk x$n, $CONNECTIONS connections in all, ${DURATION}s"
    lookup_run lookup-n$n "$pids" "${PORTS[@]:0:n}"
done

# --- 2. time to live on every node -------------------------------------------------------
while (( ${#PORTS[@]} < max_nodes )); do
    i=$(( ${#PORTS[@]} + 1 ))
    start_node node$i $((BASE_PORT + i)) --data "$WORK/node$i-data" --store "$URL"
    PORTS+=($((BASE_PORT + i)))
done
urls=$(printf 'http://127.0.0.1:%s,' "${PORTS[@]}"); urls=${urls%,}
python3 "$BENCH_DIR/procstat.py" "$WORK/ttl.before.json" --nodes "$(IFS=,; echo "${NODE_PIDS[*]}")" --postmaster "$POSTMASTER"
log "time to live: $TTL_REPS hashes through node 1's API, $CLI_REPS through the CLI, polling ${#PORTS[@]} nodes"
python3 "$BENCH_DIR/ttl.py" --nodes "$urls" --key "$KEY" --bank "$BANK" --cordon "$CORDON" --store "$URL" \
    --workdir "$WORK" --reps "$TTL_REPS" --cli-reps "$CLI_REPS" --concurrent-reps "$CONCURRENT_REPS" \
    --poll-ms "$POLL_MS" --out "$WORK/ttl.json"
python3 "$BENCH_DIR/procstat.py" "$WORK/ttl.after.json" --nodes "$(IFS=,; echo "${NODE_PIDS[*]}")" --postmaster "$POSTMASTER"

# --- 3. submissions: what one store transaction per upload lets through ------------------
# Closed loop, a tiny PNG (decoding costs next to nothing), no policy (no decisions): each
# upload is one transaction (submission, sighting, change-feed row). Meanwhile PostgreSQL's
# active backends are sampled every 250 ms for what they wait on.
for run in $SUBMIT_RUNS; do
    IFS=: read -r n c <<<"$run"
    (( n <= ${#PORTS[@]} )) || continue
    name=submit-n$n-c$c
    surls=$(printf 'http://127.0.0.1:%s,' "${PORTS[@]:0:n}"); surls=${surls%,}
    pids=$(IFS=,; echo "${NODE_PIDS[*]:0:n}")
    python3 "$BENCH_DIR/procstat.py" "$WORK/$name.before.json" --nodes "$pids" --postmaster "$POSTMASTER"
    (for _ in $(seq $((SUBMIT_SECONDS * 4))); do
        echo "SELECT coalesce(wait_event_type || ':' || wait_event, 'running'), count(*) FROM pg_stat_activity
              WHERE datname = 'bench' AND state = 'active' AND pid <> pg_backend_pid() GROUP BY 1;"
        sleep 0.25
    done) | psql -d bench >"$WORK/$name.waits.txt" 2>&1 &
    sampler=$!
    python3 "$BENCH_DIR/submit_closed.py" --nodes "$surls" --key "$KEY" --concurrency "$c" \
        --seconds "$SUBMIT_SECONDS" --out "$WORK/$name.json" >&2
    python3 "$BENCH_DIR/procstat.py" "$WORK/$name.after.json" --nodes "$pids" --postmaster "$POSTMASTER"
    wait "$sampler" || true
done

# every node holds the same number of hashes
for p in "${PORTS[@]}"; do
    curl -s -H "Authorization: Bearer $KEY" "http://127.0.0.1:$p/m/index/status"; echo
done >"$WORK/index-status.jsonl"

cleanup; trap - EXIT; NODE_PIDS=()
python3 - "$WORK/meta.json" <<'PY'
import json, os, sys, time
m = json.load(open(sys.argv[1])); m["loadavg_end"] = list(os.getloadavg()); m["ended"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
json.dump(m, open(sys.argv[1], "w"), indent=1)
PY

# --- report ------------------------------------------------------------------------------
python3 "$BENCH_DIR/summarize.py" --work "$WORK" --node-counts "$NODE_COUNTS" \
    --md "$WORK/results.md" --json "$WORK/results.json"
log "wrote $WORK/results.md and .json"
cat "$WORK/results.md"
