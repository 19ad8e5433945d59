#!/usr/bin/env bash
# `make bench`: installs the load generator (Debian's wrk, with LuaJIT) and py-spy when
# missing, then runs the benchmark (python -m bench) and writes bench/RESULTS.md.
# Arguments are passed to python -m bench (see `python -m bench --help`), e.g.
#   ./bench/run.sh --duration 5 --scaling 1x1,2x1
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
if ! command -v wrk >/dev/null 2>&1; then
    echo "bench: installing wrk"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends wrk
fi
if [ ! -x .venv/bin/py-spy ]; then
    echo "bench: installing py-spy into .venv"
    .venv/bin/pip install -q 'py-spy==0.4.3'
fi
exec .venv/bin/python -m bench "$@"
