# bench/lib.sh: helpers sourced by bench/run.sh and scripts/fleet.sh (not
# run by itself). A throwaway redis-server on a free loopback port, and CPU
# time of a process from /proc.
#
#   redis_start DIR   starts redis-server with DIR as its working directory,
#                     no persistence (no RDB saves, no AOF), bound to
#                     127.0.0.1 on a free port; sets REDIS_PID, REDIS_PORT,
#                     REDIS_URL. Fails if it does not answer PING in 5 s.
#   redis_stop        stops it by its PID (SIGTERM, then waits).
#   redis_cli ARGS    redis-cli against it.
#   cpu_ticks PID     utime + stime of PID in clock ticks (CLK_TCK per second).

CLK_TCK=$(getconf CLK_TCK)
REDIS_PID=
REDIS_PORT=
REDIS_URL=

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

redis_start() {
    local dir=$1 try
    command -v redis-server >/dev/null || { echo "redis-server not found" >&2; return 1; }
    for try in 1 2 3 4 5; do
        REDIS_PORT=$(free_port)
        redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$dir" \
            --save "" --appendonly no --daemonize no \
            --logfile "$dir/redis.log" >/dev/null 2>&1 </dev/null &
        REDIS_PID=$!
        for _ in $(seq 50); do
            if [[ $(redis-cli -p "$REDIS_PORT" ping 2>/dev/null) == PONG ]]; then
                REDIS_URL="redis://127.0.0.1:$REDIS_PORT"
                return 0
            fi
            kill -0 "$REDIS_PID" 2>/dev/null || break
            sleep 0.1
        done
        # The port was taken between the probe and the bind, or it hung.
        redis_stop
    done
    echo "redis-server did not start; last log lines:" >&2
    tail -n 5 "$dir/redis.log" >&2 2>/dev/null
    return 1
}

redis_stop() {
    if [[ -n $REDIS_PID ]] && kill -0 "$REDIS_PID" 2>/dev/null; then
        kill "$REDIS_PID" 2>/dev/null || true
        wait "$REDIS_PID" 2>/dev/null || true
    fi
    REDIS_PID=
}

redis_cli() {
    redis-cli -p "$REDIS_PORT" "$@"
}

cpu_ticks() {
    # Fields 14 and 15 of /proc/PID/stat, counted after the ")" that ends
    # the command name (which may hold spaces).
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
    stat=${stat##*) }
    # After the name: state is field 3, so utime is word 12, stime word 13.
    awk '{ print $12 + $13 }' <<<"$stat"
}
