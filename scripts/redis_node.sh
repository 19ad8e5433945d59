#!/usr/bin/env bash
# Runs one Redis of the local cluster in the foreground (supervisord programs redis_1/2,
# rendered by scripts/cluster.py). Sentinel decides who is primary: on its first start a node
# is primary if it is FIRST_PRIMARY_PORT, else its replica; on any later start (after a
# crash) it asks the sentinels for the current primary and starts as its replica, waiting
# while they still name this very node (a node that restarted empty must never serve as
# the primary the others copy from: Sentinel fails over first).
# usage: redis_node.sh PORT DIR FIRST_PRIMARY_PORT SENTINEL_PORT...
set -euo pipefail
port=$1 dir=$2 first=$3
shift 3
mkdir -p "$dir"

primary() {
    local s found
    for s in "$@"; do
        found=$(redis-cli -h 127.0.0.1 -p "$s" --raw sentinel get-master-addr-by-name shillings \
            2>/dev/null | xargs || true)
        if [ -n "$found" ]; then echo "$found"; return 0; fi
    done
}

master=""
if [ ! -f "$dir/started" ]; then
    [ "$port" != "$first" ] && master="127.0.0.1 $first"
else
    for _ in $(seq 1 600); do
        master=$(primary "$@")
        if [ -n "$master" ] && [ "$master" != "127.0.0.1 $port" ]; then break; fi
        master=""
        sleep 0.1
    done
    if [ -z "$master" ]; then
        echo "redis_node: the sentinels name no other primary; not starting" >&2
        exit 1
    fi
fi
touch "$dir/started"
args=(--port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$dir"
    --daemonize no --logfile "" --maxmemory 256mb --maxmemory-policy noeviction)
if [ -n "$master" ]; then
    echo "redis_node: starting as a replica of $master"
    # shellcheck disable=SC2086
    args+=(--replicaof $master)
fi
exec redis-server "${args[@]}"
