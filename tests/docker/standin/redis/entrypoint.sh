#!/usr/bin/env bash
# Like the official image, redis-server runs without protected mode unless told otherwise
# (the official image compiles it off): other containers reach it on the compose network.
set -euo pipefail
if [ "${1:-}" = redis-server ] && [[ " $* " != *" --protected-mode "* ]]; then
    exec "$@" --protected-mode no
fi
exec "$@"
