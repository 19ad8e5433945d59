"""Closing a web process's kept-alive HTTP connections without losing a request.

Nginx keeps idle connections to each web process and reuses them; a request it writes into a
connection the process closes at that very moment is lost (and a POST is not resent). So a
stopping web process first stops listening, then answers every request with
``Connection: close``, and closes a connection itself only after it has stayed idle for a
while (nginx reuses its most recent connections first, so one idle that long is not about
to be picked); it stops once every connection is gone, or after its grace period.
"""

from __future__ import annotations

import weakref
from typing import Any

from twisted.internet import task
from twisted.web.resource import IResource
from zope.interface import implementer

IDLE_CLOSE_S = 0.5
"""How long a connection must have been idle before a draining process closes it."""
STEP_S = 0.05


def _close_after_response(request: Any) -> None:
    request.channel.persistent = False
    request.responseHeaders.setRawHeaders(b"connection", [b"close"])


@implementer(IResource)
class Drainer:
    """A resource wrapping the API's: it notes each connection a request came on, and once
    ``drain`` starts, makes every response the last one on its connection."""

    isLeaf = True

    def __init__(self, inner: Any, reactor: Any) -> None:
        self._inner = inner
        self._reactor = reactor
        self._channels: weakref.WeakSet[Any] = weakref.WeakSet()
        self.draining = False

    def getChildWithDefault(self, name: bytes, request: Any) -> Any:
        return self._inner.getChildWithDefault(name, request)

    def putChild(self, path: bytes, child: Any) -> None:
        self._inner.putChild(path, child)

    def render(self, request: Any) -> Any:
        self._channels.add(request.channel)
        if self.draining:
            _close_after_response(request)
        return self._inner.render(request)

    def open_connections(self) -> list[Any]:
        return [c for c in self._channels if not getattr(c.transport, "disconnected", True)]

    async def drain(self, grace: float) -> int:
        """Close every connection as described above, within ``grace`` seconds; the number
        still open at the end."""
        self.draining = True
        idle_for: dict[int, float] = {}
        for _ in range(max(1, int(grace / STEP_S))):
            channels = self.open_connections()
            if not channels:
                return 0
            for channel in channels:
                if channel.requests:
                    idle_for.pop(id(channel), None)
                    for request in channel.requests:
                        if not request.startedWriting:
                            _close_after_response(request)
                    channel.persistent = False
                    continue
                idle_for[id(channel)] = idle_for.get(id(channel), 0.0) + STEP_S
                if idle_for[id(channel)] >= IDLE_CLOSE_S:
                    channel.transport.loseConnection()
            await task.deferLater(self._reactor, STEP_S, lambda: None)
        return len(self.open_connections())
