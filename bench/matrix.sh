#!/usr/bin/env bash
# bench/matrix.sh: the BENCHMARKS.md matrix, RUNS times (default 3), each
# configuration against tickstream and the one-thread floor back to back,
# one JSON line per run appended to OUT (default target/bench/matrix.jsonl).
# Summarize with: python3 bench/summarize.py target/bench/matrix.jsonl
#
#   bench/matrix.sh [RUNS] [OUT]
#
# Build first: cargo build --release && cargo build --release -p tickstream-bench
# Takes about 8 minutes per run on the 2-core reference machine; nothing
# else should run meanwhile.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
runs=${1:-3}
out=${2:-$root/target/bench/matrix.jsonl}
mkdir -p "$(dirname "$out")"
one() { # SERVER LABEL RUN.SH-ARGS...
    local server=$1 label=$2
    shift 2
    "$root/bench/run.sh" "$server" "$@" --quiet --json --label "$label" 2>/dev/null | tail -n 1 >>"$out" ||
        echo "{\"label\":\"$label\",\"failed\":true}" >>"$out"
}
for run in $(seq "$runs"); do
    echo "run $run of $runs -> $out" >&2
    for server in tickstream floor; do
        one "$server" "$server 1000@1s" -- --clients 1000 --ramp 5s --warmup 5s --duration 30s
        one "$server" "$server 5000@1s" -- --clients 5000 --ramp 5s --warmup 5s --duration 30s
        one "$server" "$server 5000@100ms" --interval 100ms -- --clients 5000 --ramp 5s --warmup 5s --duration 30s
        one "$server" "$server 19000@1s" -- --clients 19000 --ramp 10s --warmup 10s --duration 60s
        one "$server" "$server accept 5000" --mode accept -- --clients 5000 --max-pending 1000
    done
done
