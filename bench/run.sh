#!/usr/bin/env bash
# bench/run.sh: start a server, drive it with tickstream-bench, stop it.
#
#   bench/run.sh SERVER [--interval DUR] [--symbols LIST] [--mode load|accept]
#                [--path PATH] [-- BENCH-ARGS...]
#
# SERVER is `tickstream` (target/release/tickstream) or `floor` (the
# one-thread baseline, `tickstream-bench floor`). The server listens on
# 127.0.0.1 port 0; its port is read from its first stderr line
# ("... listening on http://IP:PORT/"). The generator gets --url (PATH,
# default `prices`, e.g. `prices?symbols=BTC`; the floor ignores queries)
# and --pid;
# BENCH-ARGS go to it as they are (--clients, --ramp, --duration, --json ...).
# The server is stopped by its PID when the run ends, however it ends.
#
# Build first: cargo build --release && cargo build --release -p tickstream-bench
#
# Examples:
#   bench/run.sh tickstream -- --clients 1000 --duration 30s
#   bench/run.sh floor --interval 100ms -- --clients 5000 --json
#   bench/run.sh tickstream --mode accept -- --clients 5000
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
while [[ $# -gt 0 ]]; do
    case $1 in
        --interval) interval=${2:?--interval needs a value}; shift 2 ;;
        --symbols) symbols=${2:?--symbols needs a value}; shift 2 ;;
        --mode) mode=${2:?--mode needs a value}; shift 2 ;;
        --path) path=${2:?--path needs a value}; shift 2 ;;
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
    *) echo "run.sh: SERVER must be tickstream or floor" >&2; usage ;;
esac
for bin in "${cmd[0]}" "$bench"; do
    [[ -x $bin ]] || { echo "run.sh: $bin not built (cargo build --release)" >&2; exit 1; }
done

log=$(mktemp "${TMPDIR:-/tmp}/tickstream-bench-server.XXXXXX")
"${cmd[@]}" 2>"$log" </dev/null >/dev/null &
pid=$!
stop() {
    if kill -0 "$pid" 2>/dev/null; then
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
    if [[ $(wc -l <"$log") -gt 1 ]]; then
        echo "run.sh: server log (last lines):" >&2
        tail -n 5 "$log" >&2
    fi
    rm -f "$log"
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

echo "run.sh: $server (pid $pid) at $url, interval $interval, symbols $symbols" >&2
"$bench" "$mode" --url "${url}${path#/}" --pid "$pid" --label "$server interval=$interval" "$@"
