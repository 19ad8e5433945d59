"""The HTTP server side: request ids, body limit, one log line per request, JSON writing.

``ShillingsRequest`` enforces the body limit while the body is read (Content-Length
and the bytes actually received), assigns the request id, and turns any failure that
escapes the application into a 500 envelope. ``ShillingsSite`` replaces Twisted's access
log with one structured ``twisted.logger`` event per request.
"""

from __future__ import annotations

import io
import re
import time
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote_to_bytes

from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web import http, server
from twisted.web.resource import IResource

from shillings_proto.batchlog import emit_info
from shillings_proto.eager import eager, held
from shillings_web.errors import default_message, encode, envelope
from shillings_web.logs import REQUEST_NAMESPACE
from shillings_web.metrics import WebMetrics

log = Logger(namespace=REQUEST_NAMESPACE)

_REQUEST_ID_RE = re.compile(rb"^[A-Za-z0-9._:\-]{1,128}$")
CLIENT_CLOSED = 499
"""Status logged for a request whose client went away before the answer (nginx's 499)."""


def set_json(
    request: Any, code: int, document: dict[str, Any], headers: dict[str, str] | None = None
) -> bytes:
    """Set status and headers for a JSON response; return the body to write."""
    return set_body(request, code, encode(document), headers)


def set_body(request: Any, code: int, body: bytes, headers: dict[str, str] | None = None) -> bytes:
    """``set_json`` of a document already encoded (``body``)."""
    request.setResponseCode(code)
    request.setHeader(b"Content-Type", b"application/json")
    request.setHeader(b"Cache-Control", b"no-store")
    request.setHeader(b"Content-Length", b"%d" % len(body))
    if headers:
        for name, value in headers.items():
            request.setHeader(name.encode("ascii"), value.encode("latin-1"))
    return body


class ShillingsRequest(server.Request):
    """A request with an id, a start time, a user id for the log, and a body size limit."""

    def __init__(self, channel: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(channel, *args, **kwargs)
        self.web_site: ShillingsSite = channel.site
        self.request_id = ""
        self.user_id: int | None = None
        self.started = time.monotonic()
        self.too_large = False
        self._body_size = 0
        self._logged = False

    @property
    def _max_body(self) -> int:
        return self.web_site.max_body

    def gotLength(self, length: int | None) -> None:
        if length is not None and length > self._max_body:
            self._discard_body()
            return
        super().gotLength(length)

    def handleContentChunk(self, data: bytes) -> None:
        if self.too_large:
            return
        self._body_size += len(data)
        if self._body_size > self._max_body:
            self._discard_body()
            return
        super().handleContentChunk(data)

    def _discard_body(self) -> None:
        """Stop keeping the body: it is over the limit and will be answered with 413."""
        self.too_large = True
        old: Any = self.content
        if old is not None:
            old.close()
        self.content = io.BytesIO()  # type: ignore[assignment]

    def body(self) -> bytes:
        """The whole request body (never more than the site's limit)."""
        content: Any = self.content
        content.seek(0)
        return bytes(content.read())

    def write(self, data: bytes) -> None:
        """The first write sends the head and ``data`` in one system call (``held``)."""
        if self.startedWriting or self.channel is None:
            super().write(data)
            return
        transport = held(self.channel.transport)
        try:
            super().write(data)
        finally:
            if transport is not None:
                transport.release()

    def process(self) -> None:
        self.started = time.monotonic()
        incoming = self.getHeader(b"x-request-id")
        raw = incoming.encode("latin-1") if isinstance(incoming, str) else incoming
        if raw is not None and _REQUEST_ID_RE.match(raw):
            self.request_id = raw.decode("ascii")
        else:
            self.request_id = uuid.uuid4().hex
        self.setHeader(b"X-Request-Id", self.request_id.encode("ascii"))
        self.web_site.in_flight += 1
        if self.too_large:
            limit = self._max_body // 1024
            self._answer(413, f"request body over {limit} KiB", "payload_too_large")
            return
        try:
            unquote_to_bytes(self.path).decode("utf-8")
        except UnicodeDecodeError:
            self._answer(400, "URL is not valid UTF-8", "invalid_request")
            return
        if b"//" in self.path or b"%2f" in self.path.lower():
            # Paths are exact: an empty segment names no endpoint, wherever it is (routing
            # alone would match a leading "//" and refuse an inner one); an escaped slash
            # belongs to its segment (RFC 3986), but Twisted unquotes each segment before
            # Klein joins them with "/", so it would route as a separator.
            self._answer(404, "no such endpoint", "not_found")
            return
        super().process()

    def _answer(self, code: int, message: str, reason: str) -> None:
        body = set_json(self, code, envelope(code, message, reason))
        self.write(body)
        self.finish()

    def processingFailed(self, reason: Failure) -> Failure:
        log.failure(
            "unhandled error in {method} {path} request_id={request_id}",
            reason,
            method=_text(self.method),
            path=_text(self.path),
            request_id=self.request_id,
        )
        if self._disconnected or self.finished:
            return reason
        if self.startedWriting:
            self.loseConnection()
            return reason
        body = set_json(
            self,
            500,
            envelope(500, "internal error", "internal_error", request_id=self.request_id),
        )
        self.write(body)
        self.finish()
        return reason

    def log_outcome(self, status: int) -> None:
        """Emit this request's log line once (on finish, or when the client went away)."""
        if self._logged:
            return
        self._logged = True
        self.web_site.request_done()
        method, path = _text(self.method), _text(self.path)
        seconds = time.monotonic() - self.started
        if self.web_site.metrics is not None:
            self.web_site.metrics.observe(path, method, status, seconds)
        duration_ms = round(seconds * 1000, 1)
        user = self.user_id if self.user_id is not None else "-"
        # The text is built here in one f-string: formatting a six-field log format through
        # twisted.logger costs several times more, per request. The fields stay on the event.
        line = f"{method} {path} {status} {duration_ms}ms rid={self.request_id} user={user}"
        if self.web_site.request_log is not None:
            self.web_site.request_log(line, time.time())
            return
        emit_info(
            log,
            "{request_line}",
            request_line=line,
            method=method,
            path=path,
            status=status,
            duration_ms=duration_ms,
            request_id=self.request_id,
            user_id=self.user_id,
        )

    def connectionLost(self, reason: Failure) -> None:
        if not self.finished and self.request_id:
            self.log_outcome(CLIENT_CLOSED)
        super().connectionLost(reason)


def _text(value: bytes | str | None) -> str:
    if value is None:
        return "-"
    if isinstance(value, bytes):
        return value.decode("latin-1")
    return value


class ShillingsChannel(http.HTTPChannel):
    """Twisted's HTTP channel, answering the requests it refuses itself in the envelope.

    A request line Twisted cannot parse, a bad header, more than ``maxHeaders`` headers or
    headers over ``totalHeadersSize`` bytes, and a line over ``MAX_LENGTH`` got a bare
    ``400`` (or a dropped connection); they get 400 ``invalid_request``, 431
    ``headers_too_large`` or 414 ``uri_too_long``, then the connection is closed.
    """

    _secure = False

    def connectionMade(self) -> None:
        eager(self.transport)
        super().connectionMade()
        self._secure = super().isSecure()

    def isSecure(self) -> bool:
        """Whether the connection is TLS, found once per connection (Twisted's adapts the
        transport to ``ISSLTransport`` on each call, twice per request through Klein)."""
        return self._secure

    def _respondToBadRequestAndDisconnect(self) -> None:
        too_many = self._receivedHeaderCount > self.maxHeaders
        if too_many or self._receivedHeaderSize > self.totalHeadersSize:
            self._refuse(431, "too many or too large request headers", "headers_too_large")
        else:
            self._refuse(400, "malformed HTTP request", "invalid_request")

    def lineLengthExceeded(self, line: bytes) -> None:
        # `_command` exists once the request line of the current request was parsed.
        if hasattr(self, "_command"):
            self._refuse(431, "too many or too large request headers", "headers_too_large")
        else:
            self._refuse(414, "request URI too long", "uri_too_long")

    def _refuse(self, code: int, message: str, reason: str) -> None:
        request_id = uuid.uuid4().hex
        body = encode(envelope(code, message, reason, request_id))
        head = (
            f"HTTP/1.1 {code} {default_message(code)}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nCache-Control: no-store\r\n"
            f"X-Request-Id: {request_id}\r\nConnection: close\r\n\r\n"
        )
        log.info(
            "{request_line}",
            request_line=f"- - {code} refused ({reason}) rid={request_id}",
            status=code,
            request_id=request_id,
        )
        metrics: WebMetrics | None = getattr(getattr(self, "site", None), "metrics", None)
        if metrics is not None:
            metrics.observe("-", "-", code, 0.0)
        if self.transport is not None:
            self.transport.write(head.encode("ascii") + body)
        self.loseConnection()


class ShillingsSite(server.Site):
    """A Site with the Shillings request class, a per-request log line (no access log) and
    per-request metrics."""

    protocol = ShillingsChannel  # type: ignore[assignment]
    requestFactory = ShillingsRequest
    displayTracebacks = False
    request_log: Callable[[str, float], None] | None = None
    """Takes each request's line and time instead of a published ``twisted.logger`` event:
    ``shillings-web`` sets its log writer's ``request_line`` (the same text in the file,
    without the publisher and filter per request); in-process servers publish events."""

    def __init__(
        self,
        resource: IResource,
        max_body: int,
        timeout: float = 75.0,
        metrics: WebMetrics | None = None,
    ) -> None:
        super().__init__(resource, parsePOSTFormSubmission=False, timeout=timeout)
        self.max_body = max_body
        self.metrics = metrics
        """Counts every request as it ends (also those the channel refuses unparsed)."""
        self.in_flight = 0
        self._idle_waiters: list[defer.Deferred[None]] = []

    def log(self, request: Any) -> None:
        if isinstance(request, ShillingsRequest) and request.request_id:
            request.log_outcome(request.code)

    def request_done(self) -> None:
        self.in_flight -= 1
        if self.in_flight <= 0:
            waiters, self._idle_waiters = self._idle_waiters, []
            for d in waiters:
                d.callback(None)

    def wait_idle(self) -> defer.Deferred[None]:
        """Fire once no request is in progress."""
        if self.in_flight <= 0:
            return defer.succeed(None)
        d: defer.Deferred[None] = defer.Deferred()
        self._idle_waiters.append(d)
        return d
