"""Host name resolution for webhook URLs in a thread pool of its own.

``getaddrinfo`` blocks, for as long as a slow DNS server makes it (seconds per attempt). In
the reactor's thread pool, where bcrypt checks run, a burst of registrations naming slow
hosts would hold every thread and delay logins; here it holds at most ``threads`` threads
of its own, and at most ``queue`` more resolutions wait: past that a resolution is refused
at once (``ResolverBusy``) instead of piling up behind the slow ones.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

from twisted.internet.threads import deferToThreadPool
from twisted.python.threadpool import ThreadPool

THREADS = 4
"""Resolutions run at once (each holds a thread while it waits for DNS); the default of
``SHILLINGS_WEBHOOK_RESOLVER_THREADS``."""
QUEUE = 64
"""Resolutions that may wait for a thread; the default of ``SHILLINGS_WEBHOOK_RESOLVER_QUEUE``."""

AddrInfo = list[tuple[Any, ...]]


class ResolverBusy(Exception):
    """Too many resolutions in progress: try again later."""


def lookup(host: str) -> AddrInfo:
    """The stream addresses of ``host`` (``socket.getaddrinfo``)."""
    return socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)


class Resolver:
    """Runs ``lookup`` in ``threads`` threads of its own (started on first use, stopped with
    the reactor), at most ``queue`` more waiting."""

    def __init__(
        self,
        reactor: Any,
        *,
        threads: int = THREADS,
        queue: int = QUEUE,
        lookup: Callable[[str], AddrInfo] = lookup,
    ) -> None:
        self._reactor = reactor
        self._lookup = lookup
        self.threads = threads
        """Resolutions run at once."""
        self.queue = queue
        """Resolutions that may wait for a thread."""
        self._pool: ThreadPool | None = None
        self.pending = 0
        """Resolutions running or waiting for a thread."""

    def _started(self) -> ThreadPool:
        if self._pool is None:
            pool = ThreadPool(0, self.threads, "shillings-resolver")
            pool.start()
            self._reactor.addSystemEventTrigger("during", "shutdown", pool.stop)
            self._pool = pool
        return self._pool

    async def getaddrinfo(self, host: str) -> AddrInfo:
        """``lookup(host)`` in a thread of this resolver; ``ResolverBusy`` when ``threads +
        queue`` resolutions are already in progress; ``lookup``'s own errors as raised."""
        if self.pending >= self.threads + self.queue:
            raise ResolverBusy(f"{self.pending} host name resolutions in progress")
        self.pending += 1
        try:
            return await deferToThreadPool(self._reactor, self._started(), self._lookup, host)
        finally:
            self.pending -= 1
