"""Eager writes (``shillings_proto.eager``): bytes reach the socket inside ``write`` when
nothing is queued, in order when something is, a held answer goes out as one write, and
writes held for the turn (``hold_for_turn``) go out as one at its end."""

from __future__ import annotations

import os
import socket
import tempfile

import pytest_twisted
from twisted.internet import defer, reactor
from twisted.internet.protocol import Factory, Protocol

from shillings_proto.eager import eager, held, hold_for_turn
from tests.web.sends import recording_sends


class _Server(Protocol):
    def connectionMade(self) -> None:
        eager(self.transport)
        self.factory.made.callback(self)


async def _connected() -> tuple[Protocol, socket.socket, object]:
    """A server-side eager transport and the raw client socket (non-blocking) of it."""
    path = os.path.join(tempfile.mkdtemp(prefix="eager-"), "s")
    factory = Factory.forProtocol(_Server)
    factory.made = defer.Deferred()  # type: ignore[attr-defined]
    port = reactor.listenUNIX(path, factory)
    client = socket.socket(socket.AF_UNIX)
    client.connect(path)
    client.setblocking(False)
    server = await factory.made  # type: ignore[attr-defined]
    return server, client, port


def _drain(client: socket.socket) -> bytes:
    got = b""
    while True:
        try:
            chunk = client.recv(1 << 20)
        except BlockingIOError:
            return got
        if not chunk:
            return got
        got += chunk


@pytest_twisted.ensureDeferred
async def test_a_write_on_an_idle_connection_is_sent_inside_write():
    server, client, port = await _connected()
    try:
        server.transport.write(b"hello ")
        server.transport.writeSequence([b"wor", b"ld"])
        # No reactor turn has run since: the bytes are in the socket already.
        assert _drain(client) == b"hello world"
        assert not server.transport.dataBuffer and not server.transport._tempDataBuffer
    finally:
        client.close()
        await port.stopListening()


@pytest_twisted.ensureDeferred
async def test_what_the_socket_does_not_take_is_queued_and_sent_in_order():
    server, client, port = await _connected()
    try:
        big = bytes(range(256)) * 40_000  # 10 MB: more than the socket buffers hold
        server.transport.write(big)
        queued = len(server.transport.dataBuffer) + server.transport._tempDataLen
        assert 0 < queued < len(big)
        server.transport.write(b"tail")  # queued behind the rest, never ahead of it
        got = b""
        while len(got) < len(big) + 4:
            got += _drain(client)
            d = defer.Deferred()
            reactor.callLater(0.001, d.callback, None)
            await d
        assert got == big + b"tail"
    finally:
        client.close()
        await port.stopListening()


@pytest_twisted.ensureDeferred
async def test_held_writes_go_out_as_one_write_on_release():
    server, client, port = await _connected()
    transport = server.transport
    sent = recording_sends(transport)
    try:
        holding = held(transport)
        assert holding is transport
        transport.writeSequence([b"HTTP/1.1 200 OK\r\n", b"\r\n"])
        transport.write(b"{}")
        assert sent == [] and _drain(client) == b""
        holding.release()
        assert sent == [b"HTTP/1.1 200 OK\r\n\r\n{}"]
        assert _drain(client) == b"HTTP/1.1 200 OK\r\n\r\n{}"
    finally:
        client.close()
        await port.stopListening()


async def _next_turn() -> None:
    """Return once the reactor has waited for events (``doIteration``) at least once: two
    timed-call phases of its main loop have a wait between them."""
    for _ in range(2):
        d: defer.Deferred[None] = defer.Deferred()
        reactor.callLater(0, d.callback, None)
        await d


@pytest_twisted.ensureDeferred
async def test_writes_held_for_the_turn_go_out_as_one_when_it_ends():
    server, client, port = await _connected()
    transport = server.transport
    sent = recording_sends(transport)
    try:
        hold_for_turn(transport)
        transport.write(b"one ")
        hold_for_turn(transport)  # again in the same turn: still one hold
        transport.writeSequence([b"two ", b"three"])
        assert sent == [] and _drain(client) == b""
        await _next_turn()
        assert sent == [b"one two three"]
        assert _drain(client) == b"one two three"
        transport.write(b"four")  # a later turn, not held: sent at once
        assert sent == [b"one two three", b"four"] and _drain(client) == b"four"
    finally:
        client.close()
        await port.stopListening()


@pytest_twisted.ensureDeferred
async def test_losing_the_connection_sends_what_the_turn_held_first():
    server, client, port = await _connected()
    transport = server.transport
    try:
        hold_for_turn(transport)
        transport.write(b"last words")
        transport.loseConnection()
        got = b""
        for _ in range(100):
            got += _drain(client)
            if got == b"last words":
                break
            await _next_turn()
        assert got == b"last words"
    finally:
        client.close()
        await port.stopListening()


@pytest_twisted.ensureDeferred
async def test_the_local_address_is_read_once():
    server, client, port = await _connected()
    transport = server.transport
    reads = []
    real_socket = transport.socket

    class _Counting:
        def __getattr__(self, name: str) -> object:
            return getattr(real_socket, name)

        def getsockname(self) -> object:
            reads.append(1)
            return real_socket.getsockname()

    transport.socket = _Counting()
    try:
        first = transport.getHost()
        assert transport.getHost() is first and os.fsdecode(first.name) == real_socket.getsockname()
        assert len(reads) == 1
    finally:
        transport.socket = real_socket
        client.close()
        await port.stopListening()


def test_other_transports_are_left_alone():
    from twisted.internet.testing import StringTransport

    transport = StringTransport()
    eager(transport)
    assert type(transport) is StringTransport
    assert held(transport) is None
    hold_for_turn(transport)
    transport.write(b"at once")
    assert transport.value() == b"at once"
