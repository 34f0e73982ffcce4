#!/usr/bin/env bash
# bench/run.sh: start a server, drive it with tickstream-bench, stop it.
#
#   bench/run.sh SERVER [--bin PATH] [--interval DUR] [--symbols LIST]
#                [--mode load|accept] [--path PATH] [--feed-cmd CMD] [--redis]
#                [--auth] [-- BENCH-ARGS...]
#
# SERVER is `tickstream` (target/release/tickstream), `floor` (the
# one-thread baseline, `tickstream-bench floor`) or `peer` (the axum + tokio
# comparison server, bench/peer/target/release/tickstream-peer; built apart,
# see bench/README.md). With --feed-cmd, CMD (run by bash) writes
# `SYMBOL PRICE [TS_MS]` lines into the server's stdin and the server runs
# with `--feed stdin` (tickstream and peer only); CMD is stopped with the
# server. --bin PATH runs that server binary instead of the default one
# (e.g. an older tickstream build from a worktree of its commit:
# git worktree add /tmp/tickstream-OLD COMMIT && cargo build --release
# --manifest-path /tmp/tickstream-OLD/Cargo.toml).
#
# --redis (tickstream only): a throwaway redis-server on a free loopback
# port (its own temp dir, no persistence), `tickstream publish --redis URL
# --symbols LIST --interval DUR` (always target/release/tickstream) as the
# feed, and the server with `--feed redis --redis URL`. redis-server's and
# the publisher's CPU time from the generator's start to its end are
# printed on stderr and, with --json, added to the JSON line (redis_cpu_s,
# publisher_cpu_s, redis_wall_s, redis_entries: entries added meanwhile).
#
# --auth (tickstream only): the server runs with --auth-keys (a fresh key
# file in the run's temp dir), and every client sends a token minted by
# `tickstream token` (no symbols, no throttle, 2 h) as --bearer.
#
# The server listens on
# 127.0.0.1 port 0; its port is read from its first stderr line
# ("... listening on http://IP:PORT/"). The generator gets --url (PATH,
# default `prices`, e.g. `prices?symbols=BTC`; the floor ignores queries)
# and --pid;
# BENCH-ARGS go to it as they are (--clients, --ramp, --duration, --json ...).
# The server (then the feed, then redis-server) is stopped by its PID when
# the run ends, however it ends.
#
# Build first: cargo build --release && cargo build --release -p tickstream-bench
# (and for peer: cargo build --release --manifest-path bench/peer/Cargo.toml)
#
# Examples:
#   bench/run.sh tickstream -- --clients 1000 --duration 30s
#   bench/run.sh floor --interval 100ms -- --clients 5000 --json
#   bench/run.sh tickstream --mode accept -- --clients 5000
#   bench/run.sh peer --interval 2ms -- --clients 1000 --duration 30s
#   bench/run.sh peer --feed-cmd 'target/release/tickstream-bench feed --rate 1500' \
#       -- --clients 1000 --duration 30s
#   bench/run.sh tickstream --redis -- --clients 1000 --duration 30s --json
#   bench/run.sh tickstream --bin /tmp/tickstream-OLD/target/release/tickstream -- --clients 1000
set -euo pipefail

usage() {
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
    exit 2
}

[[ $# -ge 1 ]] || usage
server=$1
shift
interval=1s
symbols=BTC,ETH,SOL
mode=load
path=prices
feed_cmd=
bin=
redis=
auth=
while [[ $# -gt 0 ]]; do
    case $1 in
        --bin) bin=${2:?--bin needs a path}; shift 2 ;;
        --redis) redis=1; shift ;;
        --auth) auth=1; shift ;;
        --interval) interval=${2:?--interval needs a value}; shift 2 ;;
        --symbols) symbols=${2:?--symbols needs a value}; shift 2 ;;
        --mode) mode=${2:?--mode needs a value}; shift 2 ;;
        --path) path=${2:?--path needs a value}; shift 2 ;;
        --feed-cmd) feed_cmd=${2:?--feed-cmd needs a command}; shift 2 ;;
        --) shift; break ;;
        *) echo "run.sh: unknown option '$1'" >&2; usage ;;
    esac
done
case $mode in load | accept) ;; *) echo "run.sh: --mode must be load or accept" >&2; exit 2 ;; esac

root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=bench/lib.sh
source "$root/bench/lib.sh"
bench="$root/target/release/tickstream-bench"
tickstream="$root/target/release/tickstream"
case $server in
    tickstream)
        cmd=("${bin:-$tickstream}" --addr 127.0.0.1:0 --quiet
            --symbols "$symbols" --interval "$interval" --max-clients 20000) ;;
    floor)
        cmd=("${bin:-$bench}" floor --addr 127.0.0.1:0 --symbols "$symbols" --interval "$interval") ;;
    peer)
        cmd=("${bin:-$root/bench/peer/target/release/tickstream-peer}" --addr 127.0.0.1:0
            --symbols "$symbols" --interval "$interval") ;;
    *) echo "run.sh: SERVER must be tickstream, floor or peer" >&2; usage ;;
esac
need=("${cmd[0]}" "$bench")
[[ -z $redis ]] || need+=("$tickstream")
for b in "${need[@]}"; do
    [[ -x $b ]] || { echo "run.sh: $b not built (see bench/README.md)" >&2; exit 1; }
done
feed=sim
if [[ -n $redis ]]; then
    [[ $server == tickstream ]] || { echo "run.sh: --redis is for tickstream only" >&2; exit 2; }
    [[ -z $feed_cmd ]] || { echo "run.sh: --redis and --feed-cmd exclude each other" >&2; exit 2; }
fi
if [[ -n $feed_cmd ]]; then
    [[ $server != floor ]] || { echo "run.sh: the floor has no stdin feed" >&2; exit 2; }
    cmd+=(--feed stdin)
    feed="stdin from: $feed_cmd"
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/tickstream-bench-run.XXXXXX")
log="$tmp/server.log"
feed_pid=
pid=
stop() {
    # The server first: a feeder then ends on its broken pipe; then the
    # publisher, then redis-server.
    for p in $pid $feed_pid; do
        if kill -0 "$p" 2>/dev/null; then
            kill "$p" 2>/dev/null || true
            wait "$p" 2>/dev/null || true
        fi
    done
    redis_stop
    if [[ -f $log && $(wc -l <"$log") -gt 1 ]]; then
        echo "run.sh: server log (last lines):" >&2
        tail -n 5 "$log" >&2
    fi
    if [[ -s $tmp/publish.log ]]; then
        echo "run.sh: publisher log (last lines):" >&2
        tail -n 5 "$tmp/publish.log" >&2
    fi
    rm -rf "$tmp"
}
trap stop EXIT
trap 'exit 130' INT TERM

if [[ -n $redis ]]; then
    mkdir "$tmp/redis"
    redis_start "$tmp/redis" || exit 1
    "$tickstream" publish --redis "$REDIS_URL" --symbols "$symbols" --interval "$interval" \
        2>"$tmp/publish.log" </dev/null >/dev/null &
    feed_pid=$!
    cmd+=(--feed redis --redis "$REDIS_URL")
    feed="redis ($REDIS_URL, redis-server pid $REDIS_PID) from tickstream publish (pid $feed_pid)"
fi
if [[ -n $auth ]]; then
    [[ $server == tickstream ]] || { echo "run.sh: --auth is for tickstream only" >&2; exit 2; }
    head -c 48 /dev/urandom | base64 >"$tmp/keys"
    cmd+=(--auth-keys "$tmp/keys")
    set -- --bearer "$("$tickstream" token --auth-keys "$tmp/keys" --ttl 2h)" "$@"
fi
if [[ -n $feed_cmd ]]; then
    # A FIFO, so that both PIDs are known: each open blocks until the
    # other side opens.
    mkfifo "$tmp/feed"
    bash -c "$feed_cmd" >"$tmp/feed" &
    feed_pid=$!
    "${cmd[@]}" 2>"$log" <"$tmp/feed" >/dev/null &
else
    "${cmd[@]}" 2>"$log" </dev/null >/dev/null &
fi
pid=$!

# Wait up to 10 s for the listening line.
url=
for _ in $(seq 100); do
    url=$(head -n 1 "$log" | sed -n 's|.* listening on \(http://[^ ]*/\)$|\1|p')
    [[ -n $url ]] && break
    kill -0 "$pid" 2>/dev/null || { echo "run.sh: server exited:" >&2; cat "$log" >&2; exit 1; }
    sleep 0.1
done
[[ -n $url ]] || { echo "run.sh: no listening line from the server in 10 s" >&2; cat "$log" >&2; exit 1; }
if [[ -n $feed_pid ]]; then
    sleep 0.2
    kill -0 "$feed_pid" 2>/dev/null || { echo "run.sh: the feed command ended: $feed_cmd" >&2; exit 1; }
fi

echo "run.sh: $server ${cmd[0]} (pid $pid) at $url, interval $interval, symbols $symbols, feed $feed" >&2
label="$server interval=$interval"
[[ -z $feed_cmd ]] || label="$server stdin"
[[ -z $redis ]] || label="$server redis interval=$interval"
[[ -z $bin ]] || label="$label bin=$(basename "$bin")"
[[ -z $auth ]] || label="$label auth"
if [[ -z $redis ]]; then
    "$bench" "$mode" --url "${url}${path#/}" --pid "$pid" --label "$label" "$@"
    exit
fi

# With redis: CPU time of redis-server and the publisher over the
# generator's run, added to its output.
r0=$(cpu_ticks "$REDIS_PID")
p0=$(cpu_ticks "$feed_pid")
x0=$(redis_cli XLEN tickstream:prices)
t0=$(date +%s.%N)
rc=0
"$bench" "$mode" --url "${url}${path#/}" --pid "$pid" --label "$label" "$@" >"$tmp/out" || rc=$?
t1=$(date +%s.%N)
r1=$(cpu_ticks "$REDIS_PID")
p1=$(cpu_ticks "$feed_pid")
x1=$(redis_cli XLEN tickstream:prices)
extra=$(awk -v r="$((r1 - r0))" -v p="$((p1 - p0))" -v hz="$CLK_TCK" -v t0="$t0" -v t1="$t1" \
    -v x="$((x1 - x0))" 'BEGIN {
        printf "\"redis_cpu_s\":%.2f,\"publisher_cpu_s\":%.2f,\"redis_wall_s\":%.2f,\"redis_entries\":%d",
            r / hz, p / hz, t1 - t0, x }')
awk -v r="$((r1 - r0))" -v p="$((p1 - p0))" -v hz="$CLK_TCK" -v t0="$t0" -v t1="$t1" \
    -v x="$((x1 - x0))" 'BEGIN {
        printf "run.sh: redis-server CPU %.2f s over %.1f s (%.2f %% of a core), publisher CPU %.2f s, %d entries added\n",
            r / hz, t1 - t0, 100 * r / hz / (t1 - t0), p / hz, x }' >&2
if [[ $(tail -n 1 "$tmp/out") == \{* ]]; then
    # The JSON line: the figures go in before its closing brace.
    sed '$ s/}$/,'"$extra"'}/' "$tmp/out"
else
    cat "$tmp/out"
    echo "redis: {$extra}"
fi
exit "$rc"
