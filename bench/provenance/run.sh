#!/usr/bin/env bash
# Provenance at scale: how long "where was this seen before?" takes against a ledger of
# 10 M sightings, by hash (`{"pdq": …}`) and by image (every PDQ variant, as an upload).
# See README.md next to this file.
#
#   bench/provenance/run.sh                 # 10 M sightings (first run builds the ledger)
#   SIGHTINGS=1000000 bench/provenance/run.sh
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$BENCH_DIR/../.." && pwd)
OUT_DIR=${OUT_DIR:-$REPO_DIR/bench/out}
SIGHTINGS=${SIGHTINGS:-10000000}
QUERIES=${QUERIES:-2000}          # hash queries (the index benchmark's, half of them near a sighting)
IMAGES=${IMAGES:-50}              # query images from the benchmark corpus
REPS=${REPS:-5}
CORE=${CORE:-0,1}       # both cores: an image's variants are searched in parallel
HASHES_DIR=${HASHES_DIR:-$OUT_DIR/index/10000000}   # bank.txt and queries.txt (seeded)
PHOTO_SRC=${PHOTO_SRC:-$OUT_DIR/inputs/corpus}
CORDON_SRC=${CORDON:-$REPO_DIR/target/release/cordon}
WORK=$OUT_DIR/provenance/$SIGHTINGS

log() { printf '== %s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

if [[ ! -x /usr/bin/time ]]; then
    log "installing GNU time (apt package 'time') for peak RSS"
    if [[ $(id -u) == 0 ]]; then apt-get install -y -qq time >&2; else sudo apt-get install -y -qq time >&2; fi
fi
[[ -x $CORDON_SRC ]] || (cd "$REPO_DIR" && cargo build --release -p cordon)
[[ -f $HASHES_DIR/bank.txt ]] || {
    log "no $HASHES_DIR/bank.txt: making the index benchmark's hashes first"
    SIZES=10000000 TOOLS=cordon REPS=1 "$REPO_DIR/bench/index/run.sh"
}
[[ -d $PHOTO_SRC ]] || "$REPO_DIR/bench/pdq/make-inputs.sh"
mkdir -p "$WORK"
CORDON=$WORK/cordon.bin           # a private copy: rebuilds during the run don't touch it
cp "$CORDON_SRC" "$CORDON"

find "$PHOTO_SRC" -maxdepth 1 -type f -name '*.jpg' | sort | head -n "$IMAGES" >"$WORK/images.txt"
head -n "$QUERIES" "$HASHES_DIR/queries.txt" >"$WORK/queries.txt"

if [[ ! -f $WORK/ledger.done ]]; then
    rm -rf "$WORK/cordon-data"
    log "building a ledger of $SIGHTINGS sightings in $WORK/cordon-data"
    "$CORDON" --data "$WORK/cordon-data" bank list >/dev/null      # makes the schema
    xargs -a "$WORK/images.txt" -d '\n' "$CORDON" hash >"$WORK/plants.jsonl"
    python3 "$BENCH_DIR/make_ledger.py" "$WORK/cordon-data/cordon.sqlite3" "$HASHES_DIR/bank.txt" \
        "$SIGHTINGS" "$WORK/plants.jsonl" | tee "$WORK/ledger.json"
    touch "$WORK/ledger.done"
fi

log "timing $QUERIES hash queries and $(wc -l <"$WORK/images.txt") image queries, $REPS reps each, on core $CORE"
cat "$WORK/cordon-data"/* >/dev/null
xargs -a "$WORK/images.txt" -d '\n' taskset -c "$CORE" /usr/bin/time -v -o "$WORK/time.txt" \
    "$CORDON" --data "$WORK/cordon-data" bench provenance --reps "$REPS" \
    --hashes "$WORK/queries.txt" >"$WORK/timings.jsonl"

python3 - "$WORK" "$SIGHTINGS" <<'PY' | tee "$OUT_DIR/provenance-results.md"
import json, re, statistics, sys
work, size = sys.argv[1], int(sys.argv[2])
lines = [json.loads(l) for l in open(f"{work}/timings.jsonl")]
load, queries = lines[0], lines[1:]
rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", open(f"{work}/time.txt").read())
def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(p * len(values)))]
print(f"# Provenance at {load['sightings']:,} sightings\n")
print(f"Ledger loaded in {load['load_ms'] / 1000:.1f} s; peak RSS {int(rss.group(1)) / 1024:.0f} MB.\n")
print("| queries | n | PDQ variants | with sightings | sightings found (median of those) | find ms p50 | total ms p50 | total ms p99 | max |")
print("|---|---|---|---|---|---|---|---|---|")
groups = {}
for q in queries:
    if q["variants"]:
        groups.setdefault(q["variants"], []).append(q)
for variants, rows in sorted(groups.items()):
    kind = "by hash" if variants == 1 else "by image"
    total = [q["total_ms"] for q in rows]
    found = [q["sightings"] for q in rows if q["sightings"]]
    print(f"| {kind} | {len(rows)} | {variants} | {len(found)} "
          f"| {statistics.median(found) if found else 0:.0f} "
          f"| {statistics.median(q['find_ms'] for q in rows):.3f} | {statistics.median(total):.3f} "
          f"| {pct(total, 0.99):.3f} | {max(total):.3f} |")
skipped = sum(1 for q in queries if not q["variants"])
if skipped:
    print(f"\n{skipped} image(s) below the PDQ quality floor had nothing to look up.")
summary = {"sightings": load["sightings"], "load_ms": load["load_ms"],
           "peak_rss_kb": int(rss.group(1)), "queries": queries}
json.dump(summary, open(f"{work}/../provenance-results-{size}.json", "w"))
PY
