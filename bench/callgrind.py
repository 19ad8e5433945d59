"""Instructions per request of one web process, under ``valgrind --tool=callgrind``.

Instruction counts do not move with the machine's load, so a change to the web process can
be measured on a shared machine. A private stack (1 web, 1 app) is started; for each
endpoint an extra web process (the code of ``--code``: this checkout, or another one with
its own ``.venv``) runs under callgrind on a UNIX socket of its own, with the stack's web
settings; instrumentation is switched on after start-up and zeroed after ``--warmup``
sequential requests, then ``--requests`` more are counted. ``klein`` is baseline (b),
``bench/klein_const.py``, in the same harness. Cached account reads (the cache's epoch is
started when the users are made, and account is measured only once its grace period
(``SHILLINGS_CACHE_GRACE``) has passed: before that every read goes to the app server);
pays and top-ups of 0.01 between two users. The counts include timer-driven work (the log
writer's flush every 0.1 s), so they vary by about 2 % between runs.

    python -m bench.callgrind --endpoints account,pay,topup,klein [--code /path/to/checkout]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from bench.stackctl import CACHE_GRACE, ROOT, Stack

PASSWORD = "callgrind bench password"


def _post(url: str, path: str, body: dict[str, Any], token: str | None = None) -> Any:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url + path, json.dumps(body).encode(), headers)
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.load(answer)


def _get(url: str, path: str, token: str) -> Any:
    request = urllib.request.Request(url + path, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.load(answer)


def _users(url: str) -> list[tuple[str, str]]:
    """Two users (email, token); the first with money to pay with. The first account read
    starts the cache's epoch (``CACHE_GRACE`` seconds before the cache serves)."""
    users = []
    for n in range(2):
        email = f"cg{n}@example.com"
        person = {"first_name": "C", "last_name": "G", "phone": "+14155550100"}
        _post(url, "/v1/signup", {**person, "email": email, "password": PASSWORD})
        token = _post(url, "/v1/login", {"email": email, "password": PASSWORD})["token"]
        users.append((email, token))
    _post(url, "/v1/topup", {"amount": "100000.00"}, users[0][1])
    _get(url, "/v1/account", users[0][1])
    return users


def _web_env(stack: Stack, listen: str) -> dict[str, str]:
    """The stack's environment of its web processes, listening on ``listen``."""
    env = stack.program_env("web")
    env["SHILLINGS_WEB_LISTEN"] = listen
    env.pop("SHILLINGS_METRICS_LISTEN", None)
    return env


class _Client:
    """Sequential HTTP/1.1 requests on one kept-alive UNIX socket connection."""

    def __init__(self, path: str, token: str) -> None:
        self._sock = socket.socket(socket.AF_UNIX)
        self._sock.connect(path)
        self._token = token
        self._rest = b""

    def request(self, method: str, path: str, body: bytes = b"") -> int:
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer"
            f" {self._token}\r\nX-Real-IP: 127.0.0.1\r\nX-Forwarded-For: 127.0.0.1\r\n"
            f"X-Request-Id: {os.urandom(16).hex()}\r\n"
        )
        if body:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        self._sock.sendall(head.encode() + b"\r\n" + body)
        while b"\r\n\r\n" not in self._rest:
            self._rest += self._recv()
        head_bytes, rest = self._rest.split(b"\r\n\r\n", 1)
        length = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head_bytes)
        if length is None:  # chunked (bare Klein): up to the last chunk
            while b"\r\n0\r\n\r\n" not in rest:
                rest += self._recv()
            self._rest = rest.split(b"\r\n0\r\n\r\n", 1)[1]
        else:
            while len(rest) < int(length.group(1)):
                rest += self._recv()
            self._rest = rest[int(length.group(1)) :]
        return int(head_bytes.split(b" ", 2)[1])

    def _recv(self) -> bytes:
        data = self._sock.recv(65536)
        if not data:
            raise ConnectionError("server closed the connection")
        return data

    def close(self) -> None:
        self._sock.close()


def measure(stack: Stack, code: Path, endpoint: str, users: list, warmup: int, n: int) -> float:
    """Millions of instructions per request of ``endpoint`` (see the module docstring)."""
    work = Path(tempfile.mkdtemp(prefix="cg-", dir="/tmp"))
    sock = str(work / "web.sock")
    python = str(code / ".venv" / "bin" / "python")
    if endpoint == "klein":
        command, env = [python, str(ROOT / "bench" / "klein_const.py"), sock], stack.env()
    else:
        log = str(work / "web.log")
        command = [python, "-m", "shillings_web.cli", "--log-file", log]
        env = _web_env(stack, f"unix:{sock}:mode=600")
    out = str(work / "callgrind.out")
    valgrind = ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}"]
    proc = subprocess.Popen(
        valgrind + command,
        cwd=code,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 300
        while not os.path.exists(sock):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{endpoint}: the web process did not start")
            time.sleep(0.5)
        (_, token), (payee, _) = users
        client = _Client(sock, token)
        pay = json.dumps({"receiver_email": payee, "amount": "0.01"}).encode()
        calls = {
            "account": lambda: client.request("GET", "/v1/account"),
            "pay": lambda: client.request("POST", "/v1/pay", pay),
            "topup": lambda: client.request("POST", "/v1/topup", b'{"amount": "0.01"}'),
            "klein": lambda: client.request("GET", "/"),
        }
        call = calls[endpoint]

        def control(*args: str) -> None:
            subprocess.run(
                ["callgrind_control", *args, str(proc.pid)], check=True, capture_output=True
            )

        control("-i", "on")
        for _ in range(warmup):
            assert call() == 200, endpoint
        control("-z")
        for _ in range(n):
            assert call() == 200, endpoint
        control("-d")
        client.close()
    finally:
        proc.terminate()
        proc.wait(120)
    dumps = [p.read_text() for p in work.glob("callgrind.out*")]
    counted = [d for d in dumps if "Trigger: dump" in d]
    shutil.rmtree(work, ignore_errors=True)
    total = re.search(r"^summary: (\d+)", counted[0], re.M) if counted else None
    if total is None:
        raise RuntimeError(f"{endpoint}: no callgrind dump")
    return int(total.group(1)) / n / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.callgrind", description=__doc__)
    parser.add_argument("--endpoints", default="account,pay,topup,klein")
    parser.add_argument("--code", type=Path, default=ROOT, help="checkout whose web code runs")
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    stack = Stack(web_procs=1, app_procs=1, bcrypt_cost=4)
    stack.start()
    try:
        users = _users(stack.url)
        settled = time.monotonic() + CACHE_GRACE + 1
        for endpoint in args.endpoints.split(","):
            if endpoint == "account":
                time.sleep(max(0.0, settled - time.monotonic()))
            millions = measure(stack, args.code, endpoint, users, args.warmup, args.requests)
            print(f"{endpoint}: {millions:.3f} M instructions per request ({args.code})")
    finally:
        stack.stop()


if __name__ == "__main__":
    main()
