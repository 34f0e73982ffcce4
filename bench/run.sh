#!/usr/bin/env bash
# bench/run.sh: start a server, drive it with tickstream-bench, stop it.
#
#   bench/run.sh SERVER [--interval DUR] [--symbols LIST] [--mode load|accept]
#                [--path PATH] [--feed-cmd CMD] [-- BENCH-ARGS...]
#
# SERVER is `tickstream` (target/release/tickstream), `floor` (the
# one-thread baseline, `tickstream-bench floor`) or `peer` (the axum + tokio
# comparison server, bench/peer/target/release/tickstream-peer; built apart,
# see bench/README.md). With --feed-cmd, CMD (run by bash) writes
# `SYMBOL PRICE [TS_MS]` lines into the server's stdin and the server runs
# with `--feed stdin` (tickstream and peer only); CMD is stopped with the
# server. The server listens on
# 127.0.0.1 port 0; its port is read from its first stderr line
# ("... listening on http://IP:PORT/"). The generator gets --url (PATH,
# default `prices`, e.g. `prices?symbols=BTC`; the floor ignores queries)
# and --pid;
# BENCH-ARGS go to it as they are (--clients, --ramp, --duration, --json ...).
# The server is stopped by its PID when the run ends, however it ends.
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
while [[ $# -gt 0 ]]; do
    case $1 in
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
bench="$root/target/release/tickstream-bench"
case $server in
    tickstream)
        cmd=("$root/target/release/tickstream" --addr 127.0.0.1:0 --quiet
            --symbols "$symbols" --interval "$interval" --max-clients 20000) ;;
    floor)
        cmd=("$bench" floor --addr 127.0.0.1:0 --symbols "$symbols" --interval "$interval") ;;
    peer)
        cmd=("$root/bench/peer/target/release/tickstream-peer" --addr 127.0.0.1:0
            --symbols "$symbols" --interval "$interval") ;;
    *) echo "run.sh: SERVER must be tickstream, floor or peer" >&2; usage ;;
esac
for bin in "${cmd[0]}" "$bench"; do
    [[ -x $bin ]] || { echo "run.sh: $bin not built (see bench/README.md)" >&2; exit 1; }
done
feed=none
if [[ -n $feed_cmd ]]; then
    [[ $server != floor ]] || { echo "run.sh: the floor has no stdin feed" >&2; exit 2; }
    cmd+=(--feed stdin)
    feed="stdin from: $feed_cmd"
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/tickstream-bench-run.XXXXXX")
log="$tmp/server.log"
feed_pid=
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
stop() {
    # The server first: a feeder then ends on its broken pipe.
    for p in $pid $feed_pid; do
        if kill -0 "$p" 2>/dev/null; then
            kill "$p" 2>/dev/null || true
            wait "$p" 2>/dev/null || true
        fi
    done
    if [[ $(wc -l <"$log") -gt 1 ]]; then
        echo "run.sh: server log (last lines):" >&2
        tail -n 5 "$log" >&2
    fi
    rm -rf "$tmp"
}
trap stop EXIT
trap 'exit 130' INT TERM

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

echo "run.sh: $server (pid $pid) at $url, interval $interval, symbols $symbols, feed $feed" >&2
label="$server interval=$interval"
[[ -z $feed_cmd ]] || label="$server stdin"
"$bench" "$mode" --url "${url}${path#/}" --pid "$pid" --label "$label" "$@"
