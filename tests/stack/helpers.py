"""Shared by the stack tests: the repository root, stack environments, HTTP calls."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.stackctl import ROOT, free_port, free_port_base

SUPERVISORCTL = str(ROOT / ".venv" / "bin" / "supervisorctl")

__all__ = [
    "ROOT",
    "SUPERVISORCTL",
    "Client",
    "MadeStack",
    "RawAnswer",
    "clean_env",
    "free_port",
    "free_port_base",
    "raw_exchange",
    "stack_env",
]


def clean_env(**overrides: str) -> dict[str, str]:
    """This process's environment without any stack setting or outer make's variables."""
    drop = {"MAKEFLAGS", "MAKELEVEL", "MFLAGS", "WEB_PROCS", "APP_PROCS", "HOOKS_PROCS"}
    env = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("SHILLINGS_")}
    env.update(overrides)
    return env


def stack_env(
    var: Path, port: int, *, web_procs: int = 2, app_procs: int = 2, **extra: str
) -> dict[str, str]:
    """The environment of a test stack: private var dir, port and metrics ports, cheap bcrypt
    (unless ``extra`` says otherwise)."""
    return clean_env(
        SHILLINGS_VAR=str(var),
        SHILLINGS_HTTP_HOST="127.0.0.1",
        SHILLINGS_HTTP_PORT=str(port),
        WEB_PROCS=str(web_procs),
        APP_PROCS=str(app_procs),
        **{
            "SHILLINGS_BCRYPT_COST": "4",
            "SHILLINGS_METRICS_PORT_BASE": str(free_port_base()),
            **extra,
        },
    )


@dataclass
class MadeStack:
    """A stack run by `make` in a private var dir, operated through supervisorctl."""

    var: Path
    port: int
    env: dict[str, str]

    @property
    def conf(self) -> str:
        return str(self.var / "etc" / "supervisord.conf")

    def make(self, target: str, timeout: float = 150.0) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["make", "--no-print-directory", target],
            cwd=ROOT,
            env=self.env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def ctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [SUPERVISORCTL, "-c", self.conf, *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=90,
            check=False,
        )

    def pid_of(self, name: str) -> int | None:
        """The pid supervisord reports for program ``name`` (None while it is not running)."""
        out = self.ctl("pid", name).stdout.strip()
        return int(out) if out.isdigit() and int(out) > 0 else None


class Client:
    """A blocking HTTP/1.1 client with one kept-alive connection (one per thread)."""

    def __init__(self, port: int, token: str | None = None, timeout: float = 15.0) -> None:
        self.port = port
        self.token = token
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)

    def call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, Any], http.client.HTTPResponse]:
        all_headers = {"Content-Type": "application/json", **(headers or {})}
        if self.token:
            all_headers["Authorization"] = f"Bearer {self.token}"
        payload = json.dumps(body).encode() if body is not None else None
        try:
            self.conn.request(method, path, body=payload, headers=all_headers)
            response = self.conn.getresponse()
            raw = response.read()
        except (OSError, http.client.HTTPException):
            self.conn.close()
            raise
        return response.status, json.loads(raw) if raw else {}, response

    def close(self) -> None:
        self.conn.close()


@dataclass
class RawAnswer:
    """An HTTP answer read off a raw socket: status, headers (lower-cased names), body."""

    status: int
    headers: dict[str, str]
    body: bytes
    raw: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def raw_exchange(port: int, request: bytes, timeout: float = 15.0) -> RawAnswer:
    """Send ``request`` byte for byte (no client-side checks) and read until the server closes.

    For requests http.client refuses to send: bad URIs, TRACE, hundreds of headers. The
    request should carry ``Connection: close`` (the malformed ones are closed anyway).
    """
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    raw = b"".join(chunks)
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding") == "chunked":
        body = _dechunk(body)
    return RawAnswer(int(status_line.split(" ")[1]), headers, body, raw)


def _dechunk(data: bytes) -> bytes:
    out = []
    while data:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out.append(data[:size])
        data = data[size + 2 :]
    return b"".join(out)
