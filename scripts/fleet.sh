#!/usr/bin/env bash
# A fleet on one machine (README "Scaling out"): redis-server, a sim
# publisher, three `--feed redis` replicas and nginx with README.md's
# ```nginx fleet block, each on a free port near the README's. Prints the
# page's URL and how to kill the replica the page is on; a replica that dies
# is started again on its port two seconds later. Ctrl-C (or SIGTERM) stops
# everything the script started, by PID, and removes its directory.
#
#   cargo build --release && scripts/fleet.sh
#
# TICKSTREAM_* variables reach the publisher and the replicas alike.
set -euo pipefail
cd "$(dirname "$0")/.."

bin=target/release/tickstream
if [ ! -x "$bin" ]; then
    echo "fleet: $bin is missing; build it first: cargo build --release" >&2
    exit 2
fi
nginx=$(command -v nginx || true)
[ -n "$nginx" ] || { [ -x /usr/sbin/nginx ] && nginx=/usr/sbin/nginx; } || true
for tool in redis-server redis-cli "$nginx"; do
    if [ -z "$tool" ] || ! command -v "$tool" >/dev/null; then
        echo "fleet: needs redis-server, redis-cli and nginx (apt-get install redis-server nginx-light)" >&2
        exit 2
    fi
done

dir=$(mktemp -d "${TMPDIR:-/tmp}/tickstream-fleet.XXXXXX")
# Each child in a process group of its own (job control), so Ctrl-C reaches
# this script alone, and it stops them in order.
set -m
# redis_start and redis_stop (REDIS_PID, REDIS_PORT, REDIS_URL).
# shellcheck source=bench/lib.sh
source bench/lib.sh
publisher_pid='' nginx_pid=''
replica_pids=()

stop_all() {
    trap - EXIT INT TERM
    echo
    echo "fleet: stopping (replicas drain their streams first)"
    # Only PIDs of children not yet reaped: a reaped PID may be someone else's now.
    local pid
    for pid in "$nginx_pid" "${replica_pids[@]}" "$publisher_pid"; do
        [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "$nginx_pid" "${replica_pids[@]}" "$publisher_pid"; do
        [ -n "$pid" ] && wait "$pid" 2>/dev/null || true
    done
    redis_stop
    rm -rf "$dir"
}
trap stop_all EXIT
trap 'exit 130' INT TERM

# Sets $port to the first port from $1 up that nothing accepts connections
# on and that this script has not taken yet. Another process may still bind
# it first: start_replica and the nginx start then try the next one.
taken=" "
pick_port() {
    port=$1
    while [[ $taken == *" $port "* ]] || (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
        port=$((port + 1))
    done
    taken+="$port "
}

# True once `$2...` succeeds, within 10 s and while process $1 runs.
came_up() {
    local pid=$1
    shift
    for _ in $(seq 100); do
        "$@" 2>/dev/null && return 0
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

# Stops process $1 if it still runs (one that never came up).
give_up_on() {
    kill "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

# True when http://127.0.0.1:$1/healthz answers 200 (bash's /dev/tcp, no curl).
healthy() (
    exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
    printf 'GET /healthz HTTP/1.0\r\n\r\n' >&3
    read -r _ status _ <&3 || true
    [ "$status" = 200 ]
)

# On a free port; tries another if that one is taken before it binds.
mkdir "$dir/redis"
redis_start "$dir/redis" || exit 1
redis_port=$REDIS_PORT
redis_url=$REDIS_URL

"$bin" publish --redis "$redis_url" --interval 250ms 2>"$dir/publisher.log" &
publisher_pid=$!

# Starts replica $1 on ${ports[$1]}. Until nginx proxies to the replicas, a
# port taken by someone else is traded for the next free one.
start_replica() {
    local i=$1
    for _ in 1 2 3 4 5; do
        "$bin" --feed redis --redis "$redis_url" --addr "127.0.0.1:${ports[i]}" \
            --retry 1s --drain 2s --quiet 2>>"$dir/replica-$i.log" &
        replica_pids[i]=$!
        came_up "${replica_pids[i]}" healthy "${ports[i]}" && return 0
        give_up_on "${replica_pids[i]}"
        replica_pids[i]=''
        [ -z "$nginx_pid" ] || break
        pick_port $((ports[i] + 1))
        ports[i]=$port
    done
    echo "fleet: the replica on port ${ports[i]} did not come up; logs in $dir" >&2
    exit 1
}
ports=()
for i in 0 1 2; do
    pick_port $((4441 + i))
    ports[i]=$port
    start_replica "$i"
done

# README.md's fleet block, with these ports.
block=$(awk '/^```nginx fleet$/ { on = 1; next } on && /^```/ { exit } on' README.md)
[ -n "$block" ] || { echo "fleet: no \`\`\`nginx fleet block in README.md" >&2; exit 1; }
block=${block//127.0.0.1:4441/127.0.0.1:${ports[0]}}
block=${block//127.0.0.1:4442/127.0.0.1:${ports[1]}}
block=${block//127.0.0.1:4443/127.0.0.1:${ports[2]}}
mkdir -p "$dir/nginx"
pick_port 4440
nginx_port=$port
for _ in 1 2 3 4 5; do
    cat >"$dir/nginx/nginx.conf" <<EOF
daemon off;
worker_processes 1;
pid $dir/nginx/nginx.pid;
error_log $dir/nginx/error.log;
events { worker_connections 1024; }
http {
access_log off;
client_body_temp_path $dir/nginx/body;
proxy_temp_path $dir/nginx/proxy;
fastcgi_temp_path $dir/nginx/fastcgi;
uwsgi_temp_path $dir/nginx/uwsgi;
scgi_temp_path $dir/nginx/scgi;
${block//listen 80;/listen 127.0.0.1:$nginx_port;}
}
EOF
    "$nginx" -p "$dir/nginx" -e "$dir/nginx/error.log" -c "$dir/nginx/nginx.conf" &
    nginx_pid=$!
    came_up "$nginx_pid" healthy "$nginx_port" && break
    give_up_on "$nginx_pid"
    nginx_pid=''
    pick_port $((nginx_port + 1))
    nginx_port=$port
done
[ -n "$nginx_pid" ] || { echo "fleet: nginx did not come up; logs in $dir" >&2; exit 1; }

cat <<EOF
tickstream fleet: Redis on $redis_port, a publisher, replicas on ${ports[*]}, nginx on $nginx_port

  open the page:  http://127.0.0.1:$nginx_port/
  the stream:     curl -N http://127.0.0.1:$nginx_port/prices
  the Redis side: redis-cli -p $redis_port XREVRANGE tickstream:prices + - COUNT 3

Kill the replica the page is on, and watch the page carry on:
  for p in ${ports[*]}; do curl -s 127.0.0.1:\$p/metrics | grep -q '^tickstream_clients_connected [1-9]' && echo "page on \$p"; done
  kill -9 PID   (replica PIDs: ${replica_pids[*]}; port order as above)
The page says "reconnecting" for a moment, then goes on with no gap in its
chart. This script starts a dead replica again after 2 s (it prints its new
PID). kill -TERM PID drains a replica gracefully instead. Logs: $dir
Ctrl-C stops everything.
EOF

# Starts a replica that exits again; stops if Redis, the publisher or nginx exits.
while true; do
    exited=''
    wait -n -p exited && status=0 || status=$?
    case "$exited" in
    '') continue ;;
    "$REDIS_PID" | "$publisher_pid" | "$nginx_pid")
        [ "$exited" = "$REDIS_PID" ] && REDIS_PID=''
        [ "$exited" = "$publisher_pid" ] && publisher_pid=''
        [ "$exited" = "$nginx_pid" ] && nginx_pid=''
        echo "fleet: Redis, the publisher or nginx exited (PID $exited, status $status); logs in $dir" >&2
        exit 1
        ;;
    esac
    for i in 0 1 2; do
        if [ "$exited" = "${replica_pids[i]}" ]; then
            replica_pids[i]=''
            echo "fleet: the replica on port ${ports[i]} (PID $exited) exited with status $status; starting it again in 2 s"
            sleep 2
            start_replica "$i"
            echo "fleet: the replica on port ${ports[i]} is back, PID ${replica_pids[i]}"
        fi
    done
done
