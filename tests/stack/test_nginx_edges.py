"""Malformed HTTP through the real stack: every answer, whether nginx or a web process
refuses the request, is the JSON envelope with the right status, never nginx's HTML.

Sent over raw sockets: http.client refuses to send most of these requests."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.stack.helpers import MadeStack, RawAnswer, free_port, raw_exchange, stack_env

pytestmark = pytest.mark.stack

CLOSE = b"Host: shillings\r\nConnection: close\r\n"


@pytest.fixture(scope="module")
def stack() -> Iterator[MadeStack]:
    var = Path(tempfile.mkdtemp(prefix="shl-edge-"))
    port = free_port()
    env = stack_env(var, port, web_procs=1, app_procs=1, SHILLINGS_START_TIMEOUT="60")
    running = MadeStack(var=var, port=port, env=env)
    try:
        started = running.make("start")
        assert started.returncode == 0, started.stdout + started.stderr
        yield running
    finally:
        running.make("stop")
        shutil.rmtree(var, ignore_errors=True)


def get(path: bytes, *headers: bytes, method: bytes = b"GET") -> bytes:
    return method + b" " + path + b" HTTP/1.1\r\n" + CLOSE + b"".join(headers) + b"\r\n"


def assert_envelope(answer: RawAnswer, code: int, reason: str) -> None:
    assert answer.status == code, answer.raw[:300]
    assert answer.headers.get("content-type") == "application/json", answer.raw[:300]
    assert b"<html" not in answer.raw.lower() and b"nginx</center>" not in answer.raw
    status = answer.json()["status"]
    assert (status["code"], status["reason"]) == (code, reason), status
    assert isinstance(status["message"], str) and status["message"]
    request_id = answer.headers.get("x-request-id")
    assert request_id, answer.headers
    assert status.get("request_id", request_id) == request_id


MALFORMED = {
    # the cases: request-line errors nginx could only answer in HTML
    "nul byte in the path": (get(b"/v1/account%00"), 400, "invalid_request"),
    "dot segments above the root": (get(b"/../../etc/passwd"), 400, "invalid_request"),
    "URI over 8 KiB": (get(b"/v1/" + b"a" * 8300), 414, "uri_too_long"),
    "TRACE": (get(b"/v1/account", method=b"TRACE"), 405, "method_not_allowed"),
    # more request-line and header errors nginx raises itself
    "bad percent escape": (get(b"/v1/%zz"), 400, "invalid_request"),
    "space inside the URI": (get(b"/v1/acc ount"), 400, "invalid_request"),
    "lower-case method": (get(b"/v1/account", method=b"get"), 400, "invalid_request"),
    "not HTTP at all": (b"HELLO\r\n\r\n", 400, "invalid_request"),
    "HTTP/2 preface": (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 400, "invalid_request"),
    "HTTP/9.9": (
        b"GET /v1/account HTTP/9.9\r\n" + CLOSE + b"\r\n",
        505,
        "http_version_not_supported",
    ),
    "two Host headers": (get(b"/v1/account", b"Host: other\r\n"), 400, "invalid_request"),
    "header line over 8 KiB": (
        get(b"/v1/account", b"X-Big: " + b"a" * 9000 + b"\r\n"),
        431,
        "headers_too_large",
    ),
    "unknown transfer coding": (
        get(b"/v1/topup", b"Transfer-Encoding: gzip\r\n", method=b"POST"),
        501,
        "not_implemented",
    ),
    "bad chunk size": (
        get(b"/v1/topup", b"Transfer-Encoding: chunked\r\n", method=b"POST") + b"zz\r\n",
        400,
        "invalid_request",
    ),
    "nginx's own error location": (get(b"/_shillings/error/500"), 404, "not_found"),
    # refused by the web process behind nginx (Twisted's limits), not by nginx
    "more than 500 headers": (
        get(b"/v1/account", *(b"X-H%d: v\r\n" % i for i in range(600))),
        431,
        "headers_too_large",
    ),
    "over 16 KiB of headers in all": (
        get(b"/v1/account", *(b"X-H%d: %s\r\n" % (i, b"a" * 7000) for i in range(3))),
        431,
        "headers_too_large",
    ),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_requests_get_the_envelope(stack: MadeStack, case: str) -> None:
    request, code, reason = MALFORMED[case]
    assert_envelope(raw_exchange(stack.port, request), code, reason)


def test_no_named_location_is_asked_to_serve_a_request_line_error(stack: MadeStack) -> None:
    for request, _, _ in MALFORMED.values():
        raw_exchange(stack.port, request)
    log = (stack.var / "log" / "nginx.log").read_text(errors="replace")
    assert "empty URI in redirect" not in log


@pytest.mark.parametrize("path", [b"//v1/account", b"/v1//account", b"/v1/account/", b"//healthz"])
def test_paths_are_exact_double_slashes_are_404(stack: MadeStack, path: bytes) -> None:
    assert_envelope(raw_exchange(stack.port, get(path)), 404, "not_found")


def test_the_exact_paths_still_route(stack: MadeStack) -> None:
    assert_envelope(raw_exchange(stack.port, get(b"/v1/account")), 401, "unauthenticated")
    healthz = raw_exchange(stack.port, get(b"/healthz"))
    assert healthz.status == 200 and healthz.json()["status"]["code"] == 200


def test_the_client_request_id_comes_back_on_nginx_errors(stack: MadeStack) -> None:
    answer = raw_exchange(
        stack.port, get(b"/v1/account", b"X-Request-Id: edge-1\r\n", method=b"TRACE")
    )
    assert_envelope(answer, 405, "method_not_allowed")
    assert answer.headers["x-request-id"] == "edge-1"
