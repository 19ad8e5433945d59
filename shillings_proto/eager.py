"""Eager writes: a connection's ``write`` goes to the socket at once when nothing is queued.

Twisted's ``FileDescriptor.write`` only queues the bytes and asks the reactor to watch the
socket for writability (an ``epoll_ctl``); the next reactor turn sends them and stops
watching (another ``epoll_ctl``). For a small request or answer on an idle connection
that is two system calls and a reactor turn per write. ``eager(transport)`` makes one
connection send at once instead when its queue is empty, and queue only what the socket
did not take (or everything, when sending failed: the reactor turn then reports the
failure as before). Order is kept: nothing is sent ahead of bytes already queued.
``held(transport)`` gathers the writes of one answer (an HTTP head and its body are two
writes) until ``release()``, so they go out in one system call.

A UNIX socket connection also reads with plain ``recv`` instead of Twisted's ``recvmsg``
wrapper (which builds an ancillary data buffer per read to receive file descriptors: none
of these protocols takes any).
"""

from __future__ import annotations

from collections.abc import Iterable
from errno import EWOULDBLOCK
from typing import Any

from twisted.internet import main
from twisted.internet.tcp import Connection


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
        elif (
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
            self.write(b"".join(held))


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
