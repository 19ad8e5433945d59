#!/usr/bin/env bash
# First start on an empty /var/lib/mysql: initialise it, create MARIADB_DATABASE and
# MARIADB_USER (password MARIADB_PASSWORD, from any host), set root's password; then run
# mariadbd in the foreground as user mysql, listening on 3306 (SIGTERM: clean shutdown).
set -euo pipefail

datadir=/var/lib/mysql
marker=$datadir/.standin-initialised

sql_string() { # $1 as the body of a single-quoted SQL string
    local s=${1//\\/\\\\}
    printf '%s' "${s//\'/\'\'}"
}

initialise() {
    local root_password db=${MARIADB_DATABASE:-} user=${MARIADB_USER:-}
    if [ -n "${MARIADB_ROOT_PASSWORD:-}" ]; then
        root_password=$MARIADB_ROOT_PASSWORD
    elif [ -n "${MARIADB_RANDOM_ROOT_PASSWORD:-}" ]; then
        root_password=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
        echo "entrypoint: GENERATED ROOT PASSWORD: $root_password"
    else
        echo "entrypoint: set MARIADB_ROOT_PASSWORD or MARIADB_RANDOM_ROOT_PASSWORD" >&2
        exit 1
    fi
    echo "entrypoint: initialising $datadir"
    find "$datadir" -mindepth 1 -delete
    mariadb-install-db --user=mysql --datadir="$datadir" --skip-test-db >/dev/null
    local sock=/run/mysqld/init.sock
    mariadbd --user=mysql --datadir="$datadir" --skip-networking --socket="$sock" \
        --pid-file=/run/mysqld/init.pid &
    local pid=$! i
    for i in $(seq 300); do
        mariadb --socket="$sock" -uroot -e 'SELECT 1' >/dev/null 2>&1 && break
        kill -0 "$pid" 2>/dev/null || { echo "entrypoint: mariadbd failed" >&2; exit 1; }
        sleep 0.2
    done
    {
        echo "ALTER USER 'root'@'localhost' IDENTIFIED VIA unix_socket OR mysql_native_password"
        echo "    USING PASSWORD('$(sql_string "$root_password")');"
        if [ -n "$db" ]; then
            echo "CREATE DATABASE IF NOT EXISTS \`${db//\`/\`\`}\`;"
        fi
        if [ -n "$user" ]; then
            echo "CREATE USER '$(sql_string "$user")'@'%'"
            echo "    IDENTIFIED BY '$(sql_string "${MARIADB_PASSWORD:-}")';"
            if [ -n "$db" ]; then
                echo "GRANT ALL ON \`${db//\`/\`\`}\`.* TO '$(sql_string "$user")'@'%';"
            fi
        fi
    } | mariadb --socket="$sock" -uroot
    kill -TERM "$pid"
    wait "$pid"
    touch "$marker"
    echo "entrypoint: initialised"
}

if [ "${1:-}" = mariadbd ] || [ "${1:-}" = mysqld ]; then
    shift
    [ -f "$marker" ] || initialise
    exec mariadbd --user=mysql --datadir="$datadir" --bind-address=0.0.0.0 --port=3306 "$@"
fi
exec "$@"
