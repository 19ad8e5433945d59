#!/usr/bin/env bash
# `make docker-test`: everything the Docker test needs, then scripts/docker_test.py.
# Installs docker.io, docker-compose and debootstrap from apt when missing, starts dockerd
# (with its defaults, in the background) when it does not answer, builds the stand-in base
# images when the real ones are absent (scripts/standin_images.sh, cached as images), then
# builds and tests the image and docker-compose.yml. Needs root (dockerd, debootstrap).
set -euo pipefail
cd "$(dirname "$0")/.."

docker=/usr/bin/docker # Debian's client, not a newer one that may come first in PATH
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"

need=()
[ -x "$docker" ] && [ -x /usr/sbin/dockerd ] || need+=(docker.io)
[ -x /usr/bin/docker-compose ] || need+=(docker-compose)
[ -x /usr/sbin/debootstrap ] || need+=(debootstrap)
if [ ${#need[@]} -gt 0 ]; then
    echo "docker-test: installing ${need[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

if ! "$docker" info >/dev/null 2>&1; then
    echo "docker-test: starting dockerd (log: /var/log/dockerd.log)"
    $SUDO sh -c 'setsid dockerd >>/var/log/dockerd.log 2>&1 < /dev/null &'
    for _ in $(seq 120); do
        "$docker" info >/dev/null 2>&1 && break
        sleep 0.5
    done
    "$docker" info >/dev/null 2>&1 || {
        echo "docker-test: dockerd did not answer within 60 s" >&2
        tail -n 20 /var/log/dockerd.log >&2
        exit 1
    }
fi

# The images (stand-in bases included) need about 2 GB; leave room for the rest.
avail_kb=$(df -Pk "$("$docker" info -f '{{.DockerRootDir}}')" | awk 'NR == 2 { print $4 }')
if [ "$avail_kb" -lt $((5 * 1024 * 1024)) ]; then
    echo "docker-test: less than 5 GB free for Docker ($((avail_kb / 1024)) MB)" >&2
    exit 1
fi

start=$(date +%s)
$SUDO ./scripts/standin_images.sh "$docker" # debootstrap and chroot need root
echo "docker-test: base images ready in $(($(date +%s) - start)) s"
DOCKER=$docker exec "${PYTHON:-python3}" scripts/docker_test.py
