"""Eager writes: a connection's ``write`` goes to the socket at once when nothing is queued.

Twisted's ``FileDescriptor.write`` only queues the bytes and asks the reactor to watch the
socket for writability (an ``epoll_ctl``); the next reactor turn sends them and stops
watching (another ``epoll_ctl``). For a small request or answer on an idle connection
that is two system calls and a reactor turn per write. ``eager(transport)`` makes one
connection send at once instead when its queue is empty, and queue only what the socket
did not take (or everything, when sending failed: the reactor turn then reports the
failure as before). Order is kept: nothing is sent ahead of bytes already queued.
``held(transport)`` gathers the writes of one answer (an HTTP head and its body are two
writes) until ``release()``, so they go out in one system call. ``hold_for_turn(transport)``
holds its writes until the end of the reactor turn (``turns``): a client connection
carrying many requests (to an app server, to Redis) calls it when a request is written
while an earlier one still awaits its answer, as under load, so the requests of one turn
(pays whose HTTP requests, or whose app answers, came in one turn) go out in one system
call and its server reads them in one; a request on an idle connection still goes at once
(Nagle's rule, with the turn for the timer).

It also reads its local address once (``getHost``), and reads with plain ``recv``: a
UNIX socket connection otherwise uses Twisted's ``recvmsg`` wrapper (which builds an
ancillary data buffer per read to receive file descriptors: none of these protocols takes
any).
"""

from __future__ import annotations

from collections.abc import Iterable
from errno import EWOULDBLOCK
from typing import Any

from twisted.internet import main
from twisted.internet.tcp import Connection

from shillings_proto.turns import at_turn_end


class _EagerWrites(Connection):
    """Mixed in before a socket connection class (``eager``)."""

    _held: list[bytes] | None = None

    def doRead(self) -> Any:
        try:
            data = self.socket.recv(self.bufferSize)
        except OSError as e:
            return None if e.args[0] == EWOULDBLOCK else main.CONNECTION_LOST
        return self._dataReceived(data)

    def write(self, data: bytes) -> None:
        if self._held is not None and isinstance(data, bytes):
            self._held.append(data)
        else:
            self._write_now(data)

    def _write_now(self, data: bytes) -> None:
        if (
            data
            and self.connected
            and not self.disconnecting
            and not self._writeDisconnected
            and not self.dataBuffer
            and not self._tempDataBuffer
            and isinstance(data, bytes)
        ):
            sent = self.writeSomeData(data)
            if not isinstance(sent, int):
                super().write(data)  # failed: the reactor turn reports it
            elif sent < len(data):
                super().write(data[sent:])
        else:
            super().write(data)

    def getHost(self) -> Any:
        """The local address, read once (a connected socket's does not change): Twisted's
        HTTP request asks for it each time, a ``getsockname`` system call per request."""
        host = self.__dict__.get("_eager_host")
        if host is None:
            host = self._eager_host = super().getHost()
        return host

    def writeSequence(self, iovec: Iterable[bytes]) -> None:
        try:
            data = b"".join(iovec)
        except TypeError:
            super().writeSequence(iovec)  # raises the TypeError Twisted raises
            return
        self.write(data)

    def hold(self) -> None:
        """Collect what is written until ``release`` (then written at once, as one)."""
        if self._held is None:
            self._held = []

    def release(self) -> None:
        held, self._held = self._held, None
        if held:
            self._write_now(b"".join(held))

    def loseConnection(self) -> None:
        self.release()  # what is held goes out first, as queued bytes would
        super().loseConnection()


def hold_for_turn(transport: Any) -> None:
    """Hold ``transport``'s writes until the end of this reactor turn (``turns``) when it
    writes eagerly (nothing otherwise, or when it holds them already)."""
    if not isinstance(transport, _EagerWrites) or transport._held is not None:
        return
    transport.hold()
    at_turn_end(transport.reactor, transport.release)


_EAGER: dict[type, type] = {}


def held(transport: Any) -> Any:
    """``transport`` holding its writes (see ``_EagerWrites.hold``) when it writes eagerly;
    None otherwise. The caller must call ``release()`` on it."""
    if isinstance(transport, _EagerWrites):
        transport.hold()
        return transport
    return None


def eager(transport: Any) -> None:
    """Make ``transport`` (a plain TCP or UNIX socket connection of the reactor) write
    eagerly; anything else (TLS, a test's in-memory transport) is left as it is."""
    cls = type(transport)
    if not issubclass(cls, Connection) or issubclass(cls, _EagerWrites) or transport.TLS:
        return
    eager_cls = _EAGER.get(cls)
    if eager_cls is None:
        eager_cls = _EAGER[cls] = type(f"Eager{cls.__name__}", (_EagerWrites, cls), {})
    transport.__class__ = eager_cls
