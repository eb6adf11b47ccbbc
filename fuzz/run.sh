#!/usr/bin/env bash
# Runs every fuzz target for a bounded time, one after another, then prints what each did.
# By hand only, never in CI: fuzzing needs nightly (or RUSTC_BOOTSTRAP) and minutes of CPU.
#
#   fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]     (default 60 s, every target)
#
# Corpora grow in fuzz/corpus/<target>, crashing inputs land in fuzz/artifacts/<target>,
# each run's libFuzzer output in fuzz/artifacts/<target>/last-run.log. Exits 1 if anything
# crashed, timed out or ran out of memory.
set -euo pipefail
seconds="${1:-60}"
shift || true
fuzz="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$fuzz/.."

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi
# Sanitizers and coverage need nightly flags: a nightly toolchain when there is one, else
# the stable compiler told to accept them.
if rustup run nightly rustc --version >/dev/null 2>&1; then
    fuzz_cargo=(cargo +nightly fuzz)
    host="$(rustc +nightly -vV | sed -n 's/^host: //p')"
else
    export RUSTC_BOOTSTRAP=1
    fuzz_cargo=(cargo fuzz)
    host="$(rustc -vV | sed -n 's/^host: //p')"
fi
# Release with debug assertions and overflow checks: an overflow on input is a bug even
# where a release build would wrap silently.
build_flags=(-O -a)
"${fuzz_cargo[@]}" build "${build_flags[@]}"

if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <("${fuzz_cargo[@]}" list)
fi

# Longest input per target: room for real headers and bodies, no more (long inputs slow
# every run down).
max_len() {
    case "$1" in
        signal_text) echo 32768 ;; # past the longest feature set (400 keypoints)
        hash_list) echo 16384 ;;
        signals) echo 65536 ;; # a 160x120 RGB seed
        *) echo 65536 ;;
    esac
}

# Seeds beyond the ones each target writes itself (see src/lib.rs): the small reference
# photos, and the reference hashes as hash lists. Skipped when the shared data is absent.
reference="${CORDON_SHARED:-$fuzz/../../shared}/testdata/pdq-reference/images"
seed_from_reference() {
    local target="$1" corpus="fuzz/corpus/$1"
    [ -d "$reference" ] || return 0
    case "$target" in
        decode | exif | c2pa)
            find "$reference" -type f \( -name '*.jpg' -o -name '*.png' -o -name '*.webp' \) -size -32k |
                while read -r file; do
                    cp -n "$file" "$corpus/ref-$(basename "$file")"
                done
            ;;
        hash_list)
            local needles="$reference/reg-test-input/needles.txt"
            [ -f "$needles" ] || return 0
            # Selector byte 1 is tx, 3 JSON (see the target).
            { printf '\x01'; head -n 20 "$needles" | sed 's/^/pdq /'; } >"$corpus/ref-needles-tx"
            { printf '\x03['; head -n 20 "$needles" | sed 's/.*/"&"/' | paste -sd,; printf ']\n'; } \
                >"$corpus/ref-needles-json"
            ;;
    esac
}

summary=()
failed=0
for target in "${targets[@]}"; do
    corpus="fuzz/corpus/$target"
    artifacts="fuzz/artifacts/$target"
    mkdir -p "$corpus" "$artifacts"
    seed_from_reference "$target"
    before="$(ls "$artifacts" | grep -cE '^(crash|oom|timeout|leak)-' || true)"
    log="$artifacts/last-run.log"
    echo "== $target: ${seconds}s" >&2
    # One process (no -jobs or -fork): other work shares this machine. The target writes
    # its own seeds into the corpus before libFuzzer reads it.
    options=(-max_total_time="$seconds" -max_len="$(max_len "$target")" -timeout=30 -rss_limit_mb=2048
        -print_final_stats=1)
    if [ -f "fuzz/dicts/$target.dict" ]; then
        options+=(-dict="fuzz/dicts/$target.dict")
    fi
    status=0
    # The binary itself, not `cargo fuzz run`: that rebuilds first and again after a crash,
    # which costs minutes whenever the sources changed meanwhile.
    CORDON_FUZZ_SEED_DIR="$corpus" "fuzz/target/$host/release/$target" -artifact_prefix="$artifacts/" \
        "${options[@]}" "$corpus" >"$log" 2>&1 || status=$?
    after="$(ls "$artifacts" | grep -cE '^(crash|oom|timeout|leak)-' || true)"
    runs="$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' | tail -n 1 || true)"
    if [ -z "$runs" ]; then
        # Stopped by a crash: the last status line has the count.
        runs="$(grep -oE '^#[0-9]+' "$log" | tail -n 1 | tr -d '#' || true)"
    fi
    found=$((after - before))
    if [ "$status" -ne 0 ] && [ "$found" -eq 0 ]; then
        found="?"
    fi
    if [ "$status" -ne 0 ]; then
        failed=1
        grep -E '^(==[0-9]+==ERROR|SUMMARY|thread .* panicked|artifact_prefix|Test unit written)' "$log" |
            head -n 8 >&2 || true
    fi
    summary+=("$(printf '%-12s %12s %8s %5s' "$target" "${runs:-?}" "$found" "$status")")
done

echo
printf '%-12s %12s %8s %5s\n' target runs crashes exit
printf '%s\n' "${summary[@]}"
exit "$failed"
