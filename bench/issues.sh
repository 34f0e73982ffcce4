#!/usr/bin/env bash
# bench/issues.sh: the figures of issues 9–11 (restructure, Redis replicas,
# conflation, high rates), RUNS times (default 3), one JSON line per run
# appended to OUT (default target/bench/issues.jsonl). Summarize with:
#   python3 bench/issues.py target/bench/issues.jsonl
#
#   bench/issues.sh [RUNS] [OUT]
#
# Each repetition runs every group back to back, the alternatives of a
# group one after the other (their order reversed on even repetitions), so
# each ratio is taken between runs minutes apart:
#
#   5000@1s      5,000 clients, sim 1 s, 3 symbols: the baseline binary
#                (BASELINE, default /work/baseline/tickstream-fa2c8e6),
#                tickstream, tickstream --feed redis (publisher at 1 s), peer
#   1000@2ms     1,000 clients, sim 2 ms (1,500 events/s): tickstream, peer
#   1000 stdin   1,000 clients, stdin at 1,500 lines/s: tickstream, peer
#   5000 thr1s   5,000 clients at /prices?throttle=1s, sim 100 ms:
#                tickstream, peer
#   publish      `tickstream publish --feed stdin` writing 100,000 lines
#                from a file into a fresh redis-server, timed until exit
#   readers K    redis-server's CPU with a sim publisher at 2 ms (1,500
#                entries/s) and K = 0, 1, 4, 16 idle `--feed redis`
#                replicas (no clients) reading it, over 15 s
#
# SMOKE=1 shrinks every run (200 or 100 clients, 5 s windows) to check the
# script itself.
#
# Load runs: --ramp 5s (1,000 clients: 3s) --warmup 5s --duration 20s.
# Every line carries "series" (this invocation) and "rep" (the repetition),
# so ratios pair runs of the same repetition. run.sh's stderr goes to
# OUT's directory as issues.log.
#
# Build first: cargo build --release && cargo build --release -p tickstream-bench
# && cargo build --release --manifest-path bench/peer/Cargo.toml.
# About 8 minutes per repetition on the 2-core reference machine; nothing
# else should run meanwhile.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=bench/lib.sh
source "$root/bench/lib.sh"
runs=${1:-3}
out=${2:-$root/target/bench/issues.jsonl}
baseline=${BASELINE:-/work/baseline/tickstream-fa2c8e6}
tickstream="$root/target/release/tickstream"
bench="$root/target/release/tickstream-bench"
peer="$root/bench/peer/target/release/tickstream-peer"
for b in "$tickstream" "$bench" "$peer" "$baseline"; do
    [[ -x $b ]] || { echo "issues.sh: $b not built (see bench/README.md)" >&2; exit 1; }
done
mkdir -p "$(dirname "$out")"
log="$(dirname "$out")/issues.log"
series=$(date -u +%Y%m%dT%H%M%SZ)
# COMMIT names the build when it is not this checkout's HEAD (e.g. a
# `git archive` export built apart from a working tree others edit).
commit=${COMMIT:-$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/tickstream-issues.XXXXXX")
pids=()
cleanup() {
    local p
    for p in "${pids[@]}"; do
        kill "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    redis_stop
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

rep=0
tag() { # prefix a JSON object with series, rep and commit
    sed "s/^{/{\"series\":\"$series\",\"rep\":$rep,\"commit\":\"$commit\",/"
}

one() { # LABEL SERVER RUN.SH-ARGS... (BENCH-ARGS after --)
    local label=$1 server=$2
    shift 2
    echo "$(date -u +%T) rep $rep: $label" >&2
    echo "=== $(date -u +%T) rep $rep: $label" >>"$log"
    local line
    if line=$("$root/bench/run.sh" "$server" "$@" --quiet --json --label "$label" 2>>"$log" | tail -n 1) &&
        [[ $line == \{* ]]; then
        tag <<<"$line" >>"$out"
    else
        echo "{\"label\":\"$label\",\"failed\":true}" | tag >>"$out"
    fi
}

pair() { # runs the given functions in order, reversed on even repetitions
    local f fs=("$@")
    if ((rep % 2 == 0)); then
        local i
        for ((i = ${#fs[@]} - 1; i >= 0; i--)); do "${fs[i]}"; done
    else
        for f in "${fs[@]}"; do "$f"; done
    fi
}

w5=(--clients 5000 --ramp 5s --warmup 5s --duration 20s)
w1=(--clients 1000 --ramp 3s --warmup 5s --duration 20s)
window=15
if [[ -n ${SMOKE:-} ]]; then # a quick check of the script itself
    w5=(--clients 200 --ramp 1s --warmup 1s --duration 5s)
    w1=(--clients 100 --ramp 1s --warmup 1s --duration 5s)
    window=3
fi
feed="$bench feed --rate 1500 --symbols BTC,ETH,SOL"

a_base() { one "baseline 5000@1s" tickstream --bin "$baseline" -- "${w5[@]}"; }
a_cur() { one "tickstream 5000@1s" tickstream -- "${w5[@]}"; }
b_redis() { one "tickstream+redis 5000@1s" tickstream --redis -- "${w5[@]}"; }
f_peer() { one "peer 5000@1s" peer -- "${w5[@]}"; }
c_ts() { one "tickstream 1000@2ms" tickstream --interval 2ms -- "${w1[@]}"; }
c_peer() { one "peer 1000@2ms" peer --interval 2ms -- "${w1[@]}"; }
d_ts() { one "tickstream 1000 stdin1500" tickstream --feed-cmd "$feed" -- "${w1[@]}"; }
d_peer() { one "peer 1000 stdin1500" peer --feed-cmd "$feed" -- "${w1[@]}"; }
e_ts() { one "tickstream 5000 throttle1s@100ms" tickstream --interval 100ms --path 'prices?throttle=1s' -- "${w5[@]}"; }
e_peer() { one "peer 5000 throttle1s@100ms" peer --interval 100ms --path 'prices?throttle=1s' -- "${w5[@]}"; }

# 100,000 stdin lines for the publisher, generated once.
lines="$tmp/lines.txt"
awk -v ts="$(date +%s%3N)" 'BEGIN {
    split("BTC ETH SOL", sym, " ")
    for (i = 0; i < 100000; i++)
        printf "%s %d.%02d %d\n", sym[i % 3 + 1], 1000 + i % 5000, i % 100, ts + int(i / 100)
}' >"$lines"

publish() { # the publisher's sustained XADD rate
    echo "$(date -u +%T) rep $rep: publish 100000" >&2
    local dir="$tmp/redis-publish" r0 r1 t0 t1 xlen rc=0
    rm -rf "$dir" && mkdir "$dir"
    redis_start "$dir" || { echo '{"label":"publish stdin 100000","failed":true}' | tag >>"$out"; return 0; }
    r0=$(cpu_ticks "$REDIS_PID")
    t0=$(date +%s.%N)
    /usr/bin/time -f "%U %S" -o "$tmp/time" "$tickstream" publish --feed stdin --redis "$REDIS_URL" \
        <"$lines" >/dev/null 2>>"$log" || rc=$?
    t1=$(date +%s.%N)
    r1=$(cpu_ticks "$REDIS_PID")
    xlen=$(redis_cli XLEN tickstream:prices)
    redis_stop
    awk -v n=100000 -v t0="$t0" -v t1="$t1" -v r="$((r1 - r0))" -v hz="$CLK_TCK" -v x="$xlen" \
        -v rc="$rc" -v cpu="$(tail -n 1 "$tmp/time")" 'BEGIN {
        split(cpu, c, " ")
        printf "{\"label\":\"publish stdin 100000\",\"lines\":%d,\"exit\":%d,\"seconds\":%.3f,", n, rc, t1 - t0
        printf "\"entries_per_s\":%.0f,\"xlen\":%d,\"redis_cpu_s\":%.2f,\"publisher_cpu_s\":%.2f}\n",
            x / (t1 - t0), x, r / hz, c[1] + c[2] }' | tag >>"$out"
}

readers() { # K: redis-server CPU with a 1,500 entries/s publisher and K replicas
    local k=$1 dir="$tmp/redis-readers" i r0 r1 q0 q1 x0 x1 t0 t1 pub rcpu=0
    echo "$(date -u +%T) rep $rep: redis readers $k" >&2
    rm -rf "$dir" && mkdir "$dir"
    redis_start "$dir" || { echo "{\"label\":\"redis readers $k\",\"failed\":true}" | tag >>"$out"; return 0; }
    "$tickstream" publish --redis "$REDIS_URL" --symbols BTC,ETH,SOL --interval 2ms \
        </dev/null >/dev/null 2>>"$log" &
    pub=$!
    pids=("$pub")
    for ((i = 0; i < k; i++)); do
        "$tickstream" --addr 127.0.0.1:0 --quiet --feed redis --redis "$REDIS_URL" \
            </dev/null >/dev/null 2>>"$log" &
        pids+=($!)
    done
    sleep 3
    r0=$(cpu_ticks "$REDIS_PID")
    q0=0
    for i in "${pids[@]:1}"; do q0=$((q0 + $(cpu_ticks "$i"))); done
    x0=$(redis_cli XLEN tickstream:prices)
    t0=$(date +%s.%N)
    sleep "$window"
    t1=$(date +%s.%N)
    r1=$(cpu_ticks "$REDIS_PID")
    q1=0
    for i in "${pids[@]:1}"; do q1=$((q1 + $(cpu_ticks "$i"))); done
    x1=$(redis_cli XLEN tickstream:prices)
    for i in "${pids[@]}"; do
        kill "$i" 2>/dev/null || true
        wait "$i" 2>/dev/null || true
    done
    pids=()
    redis_stop
    awk -v k="$k" -v t0="$t0" -v t1="$t1" -v r="$((r1 - r0))" -v q="$((q1 - q0))" -v hz="$CLK_TCK" \
        -v x="$((x1 - x0))" 'BEGIN {
        printf "{\"label\":\"redis readers %d\",\"replicas\":%d,\"seconds\":%.2f,\"entries\":%d,", k, k, t1 - t0, x
        printf "\"entries_per_s\":%.0f,\"redis_cpu_s\":%.2f,\"redis_cpu_pct\":%.2f,\"replicas_cpu_s\":%.2f}\n",
            x / (t1 - t0), r / hz, 100 * r / hz / (t1 - t0), q / hz }' | tag >>"$out"
}
readers_all() { readers 0; readers 1; readers 4; readers 16; }

echo "issues.sh: series $series, commit $commit, $runs repetitions -> $out (log $log)" >&2
for rep in $(seq "$runs"); do
    pair a_base a_cur b_redis f_peer
    pair c_ts c_peer
    pair d_ts d_peer
    pair e_ts e_peer
    publish
    readers_all
done
echo "issues.sh: done; python3 bench/issues.py $out" >&2
