"""Raw HTTP for hostile requests: any bytes as a body, any headers, answers checked for the
envelope and for leaks."""

from __future__ import annotations

import http.client
import json
import re
import socket
from typing import Any

from tests.stack.helpers import ROOT

LEAKS = (b"Traceback", b'File "', b"pymysql", b"$2b$", str(ROOT).encode())


class Raw:
    """One kept-alive HTTP/1.1 connection sending bodies as given (bytes, no JSON encoding)."""

    def __init__(self, port: int, source: str | None = None) -> None:
        self.port = port
        self.source = (source, 0) if source else None
        self.conn = self._connect()

    def _connect(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(
            "127.0.0.1", self.port, timeout=30, source_address=self.source
        )

    def call(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, bytes, http.client.HTTPResponse]:
        try:
            self.conn.request(method, path, body=body, headers=headers or {})
            response = self.conn.getresponse()
            raw = response.read()
        except (OSError, http.client.HTTPException):
            self.conn.close()
            self.conn = self._connect()
            raise
        if response.getheader("Connection", "").lower() == "close":
            self.conn.close()
            self.conn = self._connect()
        return response.status, raw, response

    def close(self) -> None:
        self.conn.close()


def check_envelope(status: int, raw: bytes, secrets: tuple[str, ...] = ()) -> dict[str, Any]:
    """Assert the answer is the API's JSON envelope, never a 5xx, and leaks nothing."""
    assert status < 500, (status, raw[:500])
    for leak in LEAKS + tuple(s.encode() for s in secrets):
        assert leak not in raw, (leak, raw[:500])
    document = json.loads(raw)
    assert isinstance(document, dict), raw[:200]
    envelope = document["status"]
    assert envelope["code"] == status, (status, raw[:200])
    assert isinstance(envelope["message"], str)
    if status >= 400:
        assert re.fullmatch(r"[a-z][a-z_]*", envelope["reason"]), raw[:200]
    return document


def send_huge(
    address: tuple[str, int] | str, head: bytes, body_chunks: int, chunk: bytes, tail: bytes = b""
) -> tuple[int, bytes]:
    """Send ``head`` then ``chunk`` ``body_chunks`` times on a fresh socket (TCP address or
    unix socket path), tolerating the server closing early; return status and body."""
    family = socket.AF_UNIX if isinstance(address, str) else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.settimeout(30)
        s.connect(address)
        s.sendall(head)
        try:
            for _ in range(body_chunks):
                s.sendall(chunk)
            s.sendall(tail)
        except (BrokenPipeError, ConnectionResetError):
            pass
        data = b""
        try:
            while True:
                part = s.recv(65536)
                if not part:
                    break
                data += part
                if b"\r\n\r\n" in data:
                    head_end = data.index(b"\r\n\r\n") + 4
                    length = re.search(rb"(?i)content-length: *(\d+)", data[:head_end])
                    if length and len(data) >= head_end + int(length.group(1)):
                        break
        except (ConnectionResetError, TimeoutError):
            pass
    assert data.startswith(b"HTTP/1."), data[:200]
    status = int(data.split(b" ", 2)[1])
    return status, data.split(b"\r\n\r\n", 1)[1] if b"\r\n\r\n" in data else b""


class UnixHTTPConnection(http.client.HTTPConnection):
    """HTTP straight to one web process on its unix socket (nginx bypassed)."""

    def __init__(self, path: str, timeout: float = 15.0) -> None:
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self) -> None:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.unix_path)
        self.sock = s


def call_unix(
    path: str, method: str, url: str, body: Any = None, token: str | None = None
) -> tuple[int, dict[str, Any]]:
    """One JSON request to the web process listening on ``path``."""
    conn = UnixHTTPConnection(path)
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        conn.request(method, url, json.dumps(body) if body is not None else None, headers)
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()
