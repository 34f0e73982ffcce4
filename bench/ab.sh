#!/usr/bin/env bash
# bench/ab.sh: before/after figures in one session. Runs every configuration
# of CONFIGS against every server LABEL=BIN, RUNS times (the order of the
# servers reversed on even runs, so neither always goes first), one JSON line
# per run appended to OUT. Summarize with bench/ab.py OUT.
#
#   bench/ab.sh RUNS OUT CONFIGS LABEL=BIN [LABEL=BIN ...]
#
# CONFIGS is a comma-separated list of:
#   live       5,000 clients on a 1 s feed of 3 symbols
#   throttled  5,000 clients ?throttle=1s on a 100 ms feed of 3 symbols
#   accept     5,000 new streams, 1,000 in flight
# BIN is a tickstream binary, or `peer` for the axum + tokio peer (not for
# accept; build it first, see bench/README.md). Each run: 5 s ramp, 5 s warm-up,
# a 20 s window. Nothing else should run meanwhile (2-core machine: about
# 40 s per configuration and server).
#
#   bench/ab.sh 3 target/bench/ab.jsonl live,throttled \
#       before=/tmp/tickstream-OLD/target/release/tickstream after=target/release/tickstream peer=peer
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
[[ $# -ge 4 ]] || { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }
runs=$1 out=$2 configs=$3
shift 3
servers=("$@")
mkdir -p "$(dirname "$out")"
W="--clients 5000 --ramp 5s --warmup 5s --duration 20s --quiet --json"
one() { # LABEL BIN CONFIG
    local label=$1 bin=$2 config=$3 server=tickstream args=()
    [[ $bin == peer ]] && server=peer || args=(--bin "$bin")
    case $config in
        live) args+=(--) ;;
        throttled) args+=(--interval 100ms --path 'prices?throttle=1s' --) ;;
        accept) [[ $server == peer ]] && return 0
            args+=(--mode accept -- --clients 5000 --max-pending 1000 --quiet --json) ;;
        *) echo "ab.sh: unknown configuration $config" >&2; exit 2 ;;
    esac
    # shellcheck disable=SC2086
    [[ $config == accept ]] || args+=($W)
    "$root/bench/run.sh" "$server" "${args[@]}" --label "$label $config" 2>/dev/null | tail -n 1 >>"$out" ||
        echo "{\"label\":\"$label $config\",\"failed\":true}" >>"$out"
}
for run in $(seq "$runs"); do
    order=("${servers[@]}")
    if ((run % 2 == 0)); then
        order=()
        for ((i = ${#servers[@]} - 1; i >= 0; i--)); do order+=("${servers[i]}"); done
    fi
    for config in ${configs//,/ }; do
        for s in "${order[@]}"; do
            echo "run $run of $runs: ${s%%=*} $config" >&2
            one "${s%%=*}" "${s#*=}" "$config"
        done
    done
done
