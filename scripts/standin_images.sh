#!/usr/bin/env bash
# Builds stand-ins for the base images the Dockerfile and docker-compose.yml name, for
# machines without Docker Hub, each only when no image of that name exists yet:
#
#   python:3.11-slim-bookworm   debootstrap --variant=minbase bookworm + Debian's python3.11,
#                               /usr/local/bin/python like the official image, and the host's
#                               CA bundle (so pip in `docker build` trusts the host's proxy)
#   mariadb:10.11, redis:7      Debian's packages on that base (tests/docker/standin/*), with
#                               what docker-compose.yml uses of the official images
#
# The Debian mirror is the machine's own, read from /etc/apt/sources.list.d/ (then
# /etc/apt/sources.list) at run time. usage: standin_images.sh [DOCKER]
set -euo pipefail
cd "$(dirname "$0")/.."

docker=${1:-/usr/bin/docker}
suite=bookworm
base=python:3.11-slim-bookworm

have() { "$docker" image inspect "$1" >/dev/null 2>&1; }

# The first http(s) URI serving $suite/main in the apt sources, deb822 or one-line style.
debian_mirror() {
    local f
    for f in /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list /etc/apt/sources.list; do
        [ -f "$f" ] || continue
        case "$f" in
        *.sources)
            awk -v suite="$suite" '
                BEGIN { RS = ""; FS = "\n" }
                {
                    uris = ""; ok = 0; deb = 0
                    for (i = 1; i <= NF; i++) {
                        if ($i ~ /^URIs:/) { uris = $i; sub(/^URIs:[ \t]*/, "", uris) }
                        if ($i ~ /^Suites:/ && (" " $i " ") ~ (" " suite " ")) ok = 1
                        if ($i ~ /^Types:/ && $i ~ /deb( |$)/) deb = 1
                    }
                    split(uris, u, /[ \t]+/)
                    if (ok && deb && u[1] ~ /^https?:\/\//) { print u[1]; exit }
                }' "$f"
            ;;
        *)
            awk -v suite="$suite" '$1 == "deb" {
                    i = 2; if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
                    if ($(i + 1) == suite && $i ~ /^https?:\/\//) { print $i; exit }
                }' "$f"
            ;;
        esac
    done | head -n 1
}

build_base() {
    local mirror root
    mirror=$(debian_mirror)
    if [ -z "$mirror" ]; then
        echo "standin: no apt source for Debian $suite in /etc/apt/sources.list.d/" >&2
        exit 1
    fi
    root=$(mktemp -d /var/tmp/shillings-standin.XXXXXX)
    trap 'rm -rf "$root"' EXIT
    echo "standin: debootstrap $suite (minbase) for $base"
    debootstrap --variant=minbase "$suite" "$root" "$mirror" >"$root.log" 2>&1 || {
        tail -n 30 "$root.log" "$root/debootstrap/debootstrap.log" >&2
        rm -f "$root.log"
        exit 1
    }
    # apt in the new root resolves the dependencies (debootstrap --include does not).
    chroot "$root" sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends python3.11 python3.11-venv' \
        >"$root.log" 2>&1 || {
        tail -n 30 "$root.log" >&2
        rm -f "$root.log"
        exit 1
    }
    rm -f "$root.log"
    ln -sf /usr/bin/python3.11 "$root/usr/local/bin/python"
    ln -sf /usr/bin/python3.11 "$root/usr/local/bin/python3"
    # HTTPS from here passes a proxy whose CA only the host's trust store holds.
    mkdir -p "$root/etc/ssl/certs" "$root/usr/local/share/ca-certificates"
    cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
    cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/" \
        2>/dev/null || true
    chroot "$root" apt-get clean
    rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/tmp/*
    tar -C "$root" --numeric-owner -c . | "$docker" import \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV LANG=C.UTF-8' \
        --change 'CMD ["python3"]' \
        - "$base" >/dev/null
    rm -rf "$root"
    trap - EXIT
}

if have "$base"; then
    echo "standin: $base present"
else
    build_base
fi
for image in mariadb:10.11 redis:7; do
    if have "$image"; then
        echo "standin: $image present"
    else
        echo "standin: building $image from tests/docker/standin/${image%%:*}"
        "$docker" build -q -t "$image" "tests/docker/standin/${image%%:*}" >/dev/null
    fi
done
