"""A name lookup that blocks until released, as a slow DNS server would, for tests of the
webhook resolver's isolation."""

from __future__ import annotations

import socket
import threading
from typing import Any

from twisted.internet import defer, reactor

ADDRESS = "127.0.0.1"


class BlockingLookup:
    """``lookup(host)`` blocks its thread until ``release()``, then answers ``ADDRESS`` (or
    fails as an unknown name when ``fail``). ``started(n)`` fires once n lookups are
    blocked."""

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.threads: list[str] = []
        self._gate = threading.Event()
        self._lock = threading.Lock()
        self._waiters: list[tuple[int, defer.Deferred[None]]] = []

    def __call__(self, host: str) -> list[tuple[Any, ...]]:
        with self._lock:
            self.threads.append(threading.current_thread().name)
            count = len(self.threads)
        reactor.callFromThread(self._arrived, count)  # type: ignore[attr-defined]
        self._gate.wait()
        if self.fail:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ADDRESS, 0))]

    def _arrived(self, count: int) -> None:
        for waiter in [w for w in self._waiters if w[0] <= count]:
            self._waiters.remove(waiter)
            waiter[1].callback(None)

    def started(self, n: int) -> defer.Deferred[None]:
        """Fires when ``n`` lookups have entered (and block)."""
        waiting: defer.Deferred[None] = defer.Deferred()
        self._waiters.append((n, waiting))
        with self._lock:
            count = len(self.threads)
        self._arrived(count)
        return waiting

    def release(self) -> None:
        self._gate.set()
