#!/usr/bin/env bash
# Runs one MariaDB Galera node of the local cluster in the foreground (supervisord programs
# galera_1..3, rendered by scripts/cluster.py with its defaults file NODE_DIR/my.cnf).
#   - an empty datadir is initialised only when this node is to bootstrap (node 1 of a new
#     cluster); the others receive their data from a donor by SST (mariabackup);
#   - NODE_DIR/bootstrap (written by cluster.py) makes this start bootstrap a new cluster
#     (--wsrep-new-cluster); it is consumed, so a restart after a crash joins instead;
#   - after an unclean stop (grastate seqno -1) the position is recovered first
#     (--wsrep-recover) and passed on, so the node rejoins by IST instead of a full SST.
# usage: galera_node.sh NODE_DIR
set -euo pipefail

dir=${1:?usage: galera_node.sh NODE_DIR}
cnf=$dir/my.cnf
datadir=$dir/data
mariadbd=$(command -v mariadbd || echo /usr/sbin/mariadbd)
args=()
if [ "$(id -u)" -eq 0 ]; then args+=(--user=root); fi
mkdir -p "$dir/tmp" "$dir/sst-logs"

if [ -f "$dir/bootstrap" ]; then
    if [ ! -d "$datadir/mysql" ]; then
        rm -rf "$datadir"
        mkdir -p "$datadir"
        echo "galera_node: initialising $datadir"
        mariadb-install-db --no-defaults --datadir="$datadir" "${args[@]}" \
            --auth-root-authentication-method=normal --skip-test-db --skip-name-resolve \
            >"$dir/install.log" 2>&1 || { cat "$dir/install.log" >&2; exit 1; }
    fi
    sed -i 's/^safe_to_bootstrap: 0/safe_to_bootstrap: 1/' "$datadir/grastate.dat" 2>/dev/null || true
    rm -f "$dir/bootstrap"
    echo "galera_node: bootstrapping a new cluster"
    exec "$mariadbd" --defaults-file="$cnf" "${args[@]}" --wsrep-new-cluster
fi

mkdir -p "$datadir"
if grep -q '^seqno: *-1' "$datadir/grastate.dat" 2>/dev/null && [ -d "$datadir/mysql" ]; then
    echo "galera_node: unclean stop: recovering the position"
    "$mariadbd" --defaults-file="$cnf" "${args[@]}" --wsrep-recover \
        --log-error="$dir/recover.log" >/dev/null 2>&1 || true
    position=$(sed -n 's/.*WSREP: Recovered position: *\([^ ]*\).*/\1/p' "$dir/recover.log" | tail -1)
    rm -f "$dir/recover.log"
    if [ -n "$position" ]; then
        echo "galera_node: rejoining from $position"
        args+=(--wsrep-start-position="$position")
    fi
fi
exec "$mariadbd" --defaults-file="$cnf" "${args[@]}"
