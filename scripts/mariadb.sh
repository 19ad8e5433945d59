#!/usr/bin/env bash
# Runs the stack's private MariaDB in the foreground (supervisord program `mariadb`):
# data in VAR/mysql, unix socket VAR/run/mysqld.sock, no TCP, errors to stderr.
# On first start it initialises the data directory (into a temporary directory renamed into
# place, so an interrupted initialisation is redone instead of leaving a half-made datadir).
# usage: mariadb.sh VAR_DIR [extra mariadbd arguments...]
set -euo pipefail

var=${1:?usage: mariadb.sh VAR_DIR [mariadbd args...]}
shift
datadir=$var/mysql

find_bin() {
    local found
    for found in "$(command -v "$1" 2>/dev/null || true)" "/usr/sbin/$1" "/usr/bin/$1"; do
        if [ -n "$found" ] && [ -x "$found" ]; then
            echo "$found"
            return 0
        fi
    done
    echo "mariadb.sh: $1 not found; run 'make setup' (installs mariadb-server)" >&2
    return 1
}

if [ "$(id -u)" -eq 0 ]; then user=root; else user=$(id -un); fi
mkdir -p "$var/run" "$var/log"

if [ ! -d "$datadir/mysql" ]; then
    if [ -d "$datadir" ] && [ -n "$(ls -A "$datadir")" ]; then
        echo "mariadb.sh: $datadir exists, is not empty and holds no MariaDB system tables;" \
            "move it away to let a new one be initialised" >&2
        exit 1
    fi
    install_db=$(find_bin mariadb-install-db)
    tmp=$datadir.init
    rm -rf "$tmp"
    mkdir -p "$tmp"
    echo "mariadb.sh: initialising $datadir"
    if ! "$install_db" --no-defaults --datadir="$tmp" --user="$user" \
        --auth-root-authentication-method=normal --skip-test-db --skip-name-resolve \
        >"$var/log/mariadb-install.log" 2>&1; then
        cat "$var/log/mariadb-install.log" >&2
        exit 1
    fi
    rmdir "$datadir" 2>/dev/null || true
    mv "$tmp" "$datadir"
fi

args=(
    --no-defaults
    --datadir="$datadir"
    --socket="$var/run/mysqld.sock"
    --pid-file="$var/run/mysqld.pid"
    --skip-networking
    --skip-name-resolve
)
# mariadbd refuses to run as root unless told to; as any other user it runs as that user.
if [ "$(id -u)" -eq 0 ]; then args+=(--user=root); fi
exec "$(find_bin mariadbd)" "${args[@]}" "$@"
