"""``Redis.execute``'s direct commands (GET, MGET, DEL: ``redisclient._send``) against a
scripted server: replies in order, error replies, and a server that stops answering."""

from __future__ import annotations

import os
import tempfile
import time

import pytest
import pytest_twisted
from twisted.internet import defer, reactor
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import deferLater

from shillings_web.config import RedisAddress
from shillings_web.redisclient import Redis, RedisRefused, RedisUnavailable
from tests.polling import poll_until
from tests.web.sends import recording_sends


class _Scripted(Protocol):
    """Answers each command with the factory's next scripted reply (None: stay silent)."""

    def dataReceived(self, data: bytes) -> None:
        self.factory.received.append(data)
        for _ in range(data.count(b"*")):
            reply = self.factory.replies.pop(0) if self.factory.replies else None
            if reply is not None:
                self.transport.write(reply)


async def _redis(replies: list[bytes | None]) -> tuple[Redis, Factory, object]:
    path = os.path.join(tempfile.mkdtemp(prefix="rd-"), "redis.sock")
    factory = Factory.forProtocol(_Scripted)
    factory.replies = replies  # type: ignore[attr-defined]
    factory.received = []  # type: ignore[attr-defined]
    port = reactor.listenUNIX(path, factory)
    redis = Redis(RedisAddress(unix_socket=path), reactor, timeout=0.5)
    redis.start()
    assert await poll_until(reactor, lambda: redis.connected, 5.0)
    return redis, factory, port


@pytest_twisted.ensureDeferred
async def test_direct_commands_are_sent_as_redis_commands_and_answered_in_order():
    redis, factory, port = await _redis([b"*3\r\n$1\r\na\r\n$-1\r\n$3\r\n\xc3\xa9!\r\n", b":2\r\n"])
    try:
        assert await redis.execute("mget", ["k1", "k2", "k3"]) == ["a", None, "é!"]
        assert await redis.execute("delete", ["k1", "k2"]) == 2
        sent = b"".join(factory.received)
        assert sent == (
            b"*4\r\n$4\r\nMGET\r\n$2\r\nk1\r\n$2\r\nk2\r\n$2\r\nk3\r\n"
            b"*3\r\n$3\r\nDEL\r\n$2\r\nk1\r\n$2\r\nk2\r\n"
        )
    finally:
        await redis.stop()
        await port.stopListening()


@pytest_twisted.ensureDeferred
async def test_an_error_reply_is_a_refusal():
    redis, _, port = await _redis([b"-OOM command not allowed\r\n"])
    try:
        with pytest.raises(RedisRefused):
            await redis.execute("get", "k")
    finally:
        await redis.stop()
        await port.stopListening()


@pytest_twisted.ensureDeferred
async def test_a_silent_server_fails_every_waiting_command_within_the_timeout():
    redis, _, port = await _redis([None, None])
    try:
        started = time.monotonic()
        first = redis.execute("get", "a")
        second = redis.execute("mget", ["b", "c"])
        for call in (first, second):
            with pytest.raises(RedisUnavailable):
                await call
        assert 0.4 <= time.monotonic() - started < 2.0
        # The connection was dropped; the client reconnects on its own.
        assert await poll_until(reactor, lambda: redis.connected, 5.0)
    finally:
        await redis.stop()
        await port.stopListening()


@pytest_twisted.ensureDeferred
async def test_each_command_gets_its_whole_timeout_from_one_watch_per_connection():
    """One timer watches a connection: a command sent after an answered one still waits its
    own full timeout (the watch is moved to its deadline), and an idle connection whose
    watch fires is kept."""
    redis, factory, port = await _redis([b"$1\r\na\r\n", None])
    try:
        assert await redis.execute("get", "a") == "a"
        await deferLater(reactor, 0.3, lambda: None)
        sent = time.monotonic()
        with pytest.raises(RedisUnavailable):
            await redis.execute("get", "b")
        assert 0.45 <= time.monotonic() - sent < 2.0
        await deferLater(reactor, 0.1, lambda: None)  # the dropped connection is gone
        assert redis.connected
        factory.replies.append(b"$1\r\nc\r\n")
        assert await redis.execute("get", "c") == "c"
        await deferLater(reactor, 0.7, lambda: None)  # the watch fired with nothing waiting
        assert redis.connected
        factory.replies.append(b"$1\r\nd\r\n")
        assert await redis.execute("get", "d") == "d"
    finally:
        await redis.stop()
        await port.stopListening()


@pytest_twisted.ensureDeferred
async def test_commands_written_while_one_awaits_its_reply_go_out_together():
    redis, factory, port = await _redis([b":1\r\n", b":2\r\n", b":3\r\n"])
    sends = recording_sends(redis._factory.pool[0].transport)
    try:
        replies = [defer.ensureDeferred(redis.execute("delete", [f"k{n}"])) for n in (1, 2, 3)]
        assert len(sends) == 1  # the first at once: nothing was awaiting a reply
        assert await defer.gatherResults(replies) == [1, 2, 3]
        # The two written while the first awaited its reply went in one write, in order.
        assert sends[1:] == [b"*2\r\n$3\r\nDEL\r\n$2\r\nk2\r\n*2\r\n$3\r\nDEL\r\n$2\r\nk3\r\n"]
        assert b"".join(factory.received) == b"".join(sends)
    finally:
        await redis.stop()
        await port.stopListening()
