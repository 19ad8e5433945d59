#!/usr/bin/env python3
"""Container health checks (the image's HEALTHCHECK and docker-compose.yml's), exit 0 if healthy.

    healthcheck.py             the whole stack of this container (shillings_stack's settings):
                               /healthz 200 through nginx on SHILLINGS_HTTP_PORT and from every
                               web process's own socket, so "healthy" means every web process
                               has its app server and Redis connections
    healthcheck.py --http URL  GET URL answers 200 (a web process, or nginx)
    healthcheck.py --app H:P   the app server at H:P answers a health request (database up),
                               after the SHILLINGS_APP_SECRET handshake when that is set

Never through an HTTP proxy, whatever the environment says. Stdlib, shillings_proto and
shillings_stack only.
"""

from __future__ import annotations

import argparse
import os
import socket
import struct
import sys
import urllib.error
import urllib.request

TIMEOUT = 2.5


def http_ok(url: str) -> bool:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=TIMEOUT) as response:
            return bool(response.status == 200)
    except (OSError, urllib.error.URLError):
        return False


def _read_exact(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("connection closed")
        data += chunk
    return data


def app_ok(address: str) -> bool:
    from shillings_proto import pb

    host, _, port = address.rpartition(":")
    requests = [pb.Request(command=pb.HLT, health=pb.HealthRequest())]
    secret = os.environ.get("SHILLINGS_APP_SECRET")
    if secret:
        requests.insert(0, pb.Request(command=pb.HEL, hello=pb.HelloRequest(secret=secret)))
    try:
        with socket.create_connection((host, int(port)), timeout=TIMEOUT) as sock:
            for request_id, request in enumerate(requests, start=1):
                request.request_id = request_id
                body = request.SerializeToString()
                sock.sendall(struct.pack(">I", len(body)) + body)
                (size,) = struct.unpack(">I", _read_exact(sock, 4))
                response = pb.Response.FromString(_read_exact(sock, size))
                if response.status.code != 200:
                    return False
            return bool(response.health.database_ok)
    except (OSError, ValueError):
        return False


def stack_ok() -> bool:
    from shillings_stack.config import StackConfig, StackError
    from shillings_stack.health import all_healthy

    try:
        return all_healthy(StackConfig.from_env())
    except StackError as e:
        print(f"healthcheck: {e}", file=sys.stderr)
        return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="healthcheck.py", description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--http", metavar="URL", help="GET URL must answer 200")
    group.add_argument("--app", metavar="HOST:PORT", help="an app server's health request")
    args = parser.parse_args(argv)
    if args.http:
        healthy = http_ok(args.http)
    elif args.app:
        healthy = app_ok(args.app)
    else:
        healthy = stack_ok()
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
