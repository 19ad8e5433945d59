#!/usr/bin/env bash
# The official image's health check, for the flags docker-compose.yml uses:
#   --connect               the server accepts a connection
#   --innodb_initialized    and InnoDB is up
set -euo pipefail
query() { mariadb --socket=/run/mysqld/mysqld.sock -uroot -N -B -e "$1"; }
for flag in "$@"; do
    case "$flag" in
    --connect) query 'SELECT 1' >/dev/null ;;
    --innodb_initialized)
        [ "$(query "SELECT 1 FROM information_schema.ENGINES
            WHERE ENGINE = 'InnoDB' AND SUPPORT IN ('YES', 'DEFAULT')")" = 1 ] ;;
    *) echo "healthcheck.sh: unsupported flag $flag" >&2; exit 2 ;;
    esac
done
