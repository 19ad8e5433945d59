"""What an endpoint's reply can cost a delivery worker: a send cut short by its deadline
closes its connection, a reply's body is never inflated and is read only up to
``BODY_LIMIT``, and a failure is described in a sentence, not an exception's repr. The
endpoints are raw TCP servers here, so a reply can be anything."""

from __future__ import annotations

import dataclasses
import zlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import pytest_twisted
from OpenSSL.SSL import Error as TLSError
from twisted.internet import defer, task
from twisted.internet.protocol import Factory, Protocol, connectionDone
from twisted.python.failure import Failure
from twisted.web.client import RequestTransmissionFailed, ResponseNeverReceived

from shillings_app.hooks.sender import BODY_LIMIT, Sender, describe
from shillings_app.webhooks.allow import parse_allow
from shillings_app.webhooks.secrets import new_secret
from tests.hooks.test_sender import CLAIMED

BOUND = 10.0
"""Seconds a test waits for what must happen before it fails (not a hoped-for delay)."""


class _Endpoint(Protocol):
    """Answers the first request's head (or the first bytes that are no HTTP) with
    ``reply(self)`` and records them."""

    def __init__(self, server: _Server) -> None:
        self.server = server
        self.head = b""
        self.lost: defer.Deferred[None] = defer.Deferred()

    def dataReceived(self, data: bytes) -> None:
        if b"\r\n\r\n" in self.head:
            return
        self.head += data
        if b"\r\n\r\n" in self.head or not self.head.isascii():  # a TLS hello: answer it
            self.server.heads.append(self.head.split(b"\r\n\r\n", 1)[0].lower())
            self.server.reply(self)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.lost.callback(None)


class _Server(Factory):
    def __init__(self, reply: Callable[[_Endpoint], None]) -> None:
        self.reply = reply
        self.heads: list[bytes] = []
        self.connections: list[_Endpoint] = []

    def buildProtocol(self, addr: Any) -> _Endpoint:
        endpoint = _Endpoint(self)
        self.connections.append(endpoint)
        return endpoint


@pytest.fixture
def serve() -> Iterator[Callable[[Callable[[_Endpoint], None]], tuple[_Server, str]]]:
    from twisted.internet import reactor

    ports: list[Any] = []

    def start(reply: Callable[[_Endpoint], None]) -> tuple[_Server, str]:
        server = _Server(reply)
        port = reactor.listenTCP(0, server, interface="127.0.0.1")
        ports.append(port)
        return server, f"127.0.0.1:{port.getHost().port}"

    yield start
    for port in ports:
        port.stopListening()


async def _send(address: str, deadline: float, scheme: str = "http") -> Any:
    from twisted.internet import reactor

    sender = Sender(reactor, parse_allow("127.0.0.0/8"), deadline, 2, 2)
    claimed = dataclasses.replace(CLAIMED, url=f"{scheme}://{address}/hook")
    try:
        return await sender.send(claimed, new_secret())
    finally:
        await sender.close()


async def _closed(endpoint: _Endpoint) -> None:
    """Wait until the worker closed ``endpoint``'s connection (fails after ``BOUND``)."""
    from twisted.internet import reactor

    await endpoint.lost.addTimeout(BOUND, reactor)


@pytest_twisted.ensureDeferred
async def test_a_send_cut_short_by_its_deadline_closes_its_connection(serve):
    """The status came, the body never ends: the deadline ends the send and the connection
    with it (before, the worker kept reading a trickling body for as long as it came)."""

    def trickle(endpoint: _Endpoint) -> None:
        endpoint.transport.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nx")

    server, address = serve(trickle)
    outcome = await _send(address, deadline=0.5)
    assert (outcome.status_code, outcome.error) == (0, "timed out after 0.5 s")
    assert len(server.connections) == 1
    await _closed(server.connections[0])


def _endless(head: bytes, chunk: bytes, sent: list[int]) -> Callable[[_Endpoint], None]:
    """A reply: 200 with ``head``'s headers, then ``chunk`` after ``chunk`` (chunked
    encoding) for as long as the connection stays open."""

    def reply(endpoint: _Endpoint) -> None:
        endpoint.transport.write(b"HTTP/1.1 200 OK\r\n%sTransfer-Encoding: chunked\r\n\r\n" % head)

        def chunks() -> Iterator[None]:
            while not endpoint.lost.called:
                endpoint.transport.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                sent.append(len(chunk))
                yield None

        task.cooperate(chunks())

    return reply


@pytest_twisted.ensureDeferred
async def test_an_endless_body_is_read_up_to_the_limit_then_the_connection_closed(serve):
    """A 200 whose body never ends: the send succeeds on its status, well before its
    deadline, and the worker closes the connection rather than read on (before, it read
    until the deadline, and the attempt failed)."""
    sent: list[int] = []
    server, address = serve(_endless(b"", b"y" * 8192, sent))
    outcome = await _send(address, deadline=BOUND)
    assert (outcome.status_code, outcome.error) == (200, "")
    await _closed(server.connections[0])
    assert sum(sent) > BODY_LIMIT


@pytest_twisted.ensureDeferred
async def test_a_compressed_body_is_neither_asked_for_nor_inflated(serve):
    """The same with a gzip body, each chunk inflating to 1 MiB of zeros: treq's client
    asked for gzip and inflated it (seconds of CPU for a small reply)."""
    packer = zlib.compressobj(wbits=31)
    chunk = packer.compress(bytes(1 << 20)) + packer.flush(zlib.Z_SYNC_FLUSH)
    sent: list[int] = []
    server, address = serve(_endless(b"Content-Encoding: gzip\r\n", chunk, sent))
    outcome = await _send(address, deadline=BOUND)
    assert (outcome.status_code, outcome.error) == (200, "")
    await _closed(server.connections[0])
    head = server.heads[0]
    assert b"\r\nwebhook-signature:" in head
    assert b"gzip" not in head


@pytest_twisted.ensureDeferred
async def test_tls_to_a_plain_http_endpoint_is_described_in_a_sentence(serve):
    def plain(endpoint: _Endpoint) -> None:
        endpoint.transport.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")

    _server, address = serve(plain)
    outcome = await _send(address, deadline=BOUND, scheme="https")
    assert (outcome.status_code, outcome.error) == (0, "TLS handshake failed")


@pytest.mark.parametrize(
    ("error", "said"),
    [
        (
            ResponseNeverReceived([Failure(TLSError([("SSL routines", "", "bad")]))]),
            "TLS handshake failed",
        ),
        (
            RequestTransmissionFailed([Failure(ConnectionResetError())]),
            "connection failed while sending",
        ),
        (
            ResponseNeverReceived([Failure(ConnectionResetError())]),
            "connection closed before an answer",
        ),
        (ValueError("<internal detail>"), "send failed (ValueError)"),
    ],
)
def test_failures_are_sentences_without_internals(error: BaseException, said: str) -> None:
    assert describe(error, 3.0) == said
