#!/usr/bin/env bash
# Runs every fuzz target in fuzz/fuzz_targets/ for SECONDS each (default 600) and prints each
# run's summary line; exits 1 if a target crashed (the input is kept in fuzz/artifacts/).
# Not part of the tests. cargo-fuzz wants a nightly compiler: RUSTC_BOOTSTRAP=1 lets the
# stable one act as one.
#
#   bash scripts/fuzz.sh [SECONDS]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../fuzz"
each=${1:-600}
export RUSTC_BOOTSTRAP=1
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz
# Built once up front, so the time limit is spent fuzzing.
cargo fuzz build >/dev/null
failed=0
for target in $(cargo fuzz list); do
    log=$(mktemp)
    if cargo fuzz run "$target" -- -max_total_time="$each" -print_final_stats=0 >"$log" 2>&1; then
        # libFuzzer's last status line (runs, coverage, corpus) and its "Done N runs in S s".
        summary=$(grep -E '^#[0-9]+[[:space:]]+DONE|^Done [0-9]+ runs' "$log" | tr '\n' ' ')
        echo "$target: ok: $summary"
    else
        failed=1
        echo "$target: CRASH"
        grep -E 'panicked|ERROR: |SUMMARY: |Test unit written to|stack-overflow' "$log" | sed 's/^/    /' || tail -n 20 "$log" | sed 's/^/    /'
    fi
    rm -f "$log"
done
exit "$failed"
