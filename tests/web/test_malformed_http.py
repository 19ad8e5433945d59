"""Requests Twisted refuses before any route runs, sent straight to a web process: they get
the JSON envelope (not a bare 400 or a dropped connection), and the connection is closed."""

from __future__ import annotations

from typing import Any

import pytest
import pytest_twisted
from twisted.internet import threads

from tests.stack.helpers import RawAnswer, raw_exchange

CLOSE = b"Host: web\r\nConnection: close\r\n"

CASES = {
    "request line over 16 KiB": (b"GET /" + b"a" * 17000 + b" HTTP/1.1\r\n", 414, "uri_too_long"),
    "header line over 16 KiB": (
        b"GET /v1/account HTTP/1.1\r\n" + CLOSE + b"X-Big: " + b"a" * 17000 + b"\r\n",
        431,
        "headers_too_large",
    ),
    "more than 500 headers": (
        b"GET /v1/account HTTP/1.1\r\n"
        + CLOSE
        + b"".join(b"X-H%d: v\r\n" % i for i in range(501))
        + b"\r\n",
        431,
        "headers_too_large",
    ),
    "over 16 KiB of headers": (
        b"GET /v1/account HTTP/1.1\r\n"
        + CLOSE
        + b"".join(b"X-H%d: %s\r\n" % (i, b"a" * 6000) for i in range(3))
        + b"\r\n",
        431,
        "headers_too_large",
    ),
    "header without a colon": (
        b"GET /v1/account HTTP/1.1\r\n" + CLOSE + b"NoColon\r\n\r\n",
        400,
        "invalid_request",
    ),
    "bad Content-Length": (
        b"POST /v1/topup HTTP/1.1\r\n" + CLOSE + b"Content-Length: 1x\r\n\r\n",
        400,
        "invalid_request",
    ),
    "unparseable request line": (b"GET\r\n\r\n", 400, "invalid_request"),
    "leading double slash": (b"GET //v1/account HTTP/1.1\r\n" + CLOSE + b"\r\n", 404, "not_found"),
    "inner double slash": (b"GET /v1//account HTTP/1.1\r\n" + CLOSE + b"\r\n", 404, "not_found"),
    # Twisted unquotes each segment before Klein joins them with "/": an escaped slash
    # (part of its segment, RFC 3986) was routed as a separator, to /v1/account.
    "escaped slash": (b"GET /v1%2Faccount HTTP/1.1\r\n" + CLOSE + b"\r\n", 404, "not_found"),
    "escaped slash, lower case": (
        b"POST /v1/holds/0b6f5f0e-0000-4000-8000-000000000000%2fvoid HTTP/1.1\r\n"
        + CLOSE
        + b"\r\n",
        404,
        "not_found",
    ),
    "path not UTF-8": (b"GET /v1/\xffa HTTP/1.1\r\n" + CLOSE + b"\r\n", 400, "invalid_request"),
    "escaped path not UTF-8": (
        b"GET /v1/%ffa HTTP/1.1\r\n" + CLOSE + b"\r\n",
        400,
        "invalid_request",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest_twisted.ensureDeferred
async def test_refused_requests_get_the_envelope(edge_web: Any, case: str) -> None:
    request, code, reason = CASES[case]
    answer: RawAnswer = await threads.deferToThread(raw_exchange, edge_web.server.port, request)
    assert answer.status == code, answer.raw[:300]
    assert answer.headers["content-type"] == "application/json"
    assert answer.headers["x-request-id"]
    status = answer.json()["status"]
    assert (status["code"], status["reason"]) == (code, reason), status
    assert len(answer.body) == int(answer.headers["content-length"])
