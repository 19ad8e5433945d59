"""A stand-in app server speaking the real protocol, for tests of the pool and HTTP edges."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet import defer
from twisted.internet.endpoints import serverFromString
from twisted.internet.protocol import Factory

from shillings_proto import pb
from shillings_proto.framing import ShillingsServerProtocol

Responder = Callable[[pb.Request], "pb.Response | defer.Deferred[pb.Response]"]


def ok_health(request: pb.Request) -> pb.Response:
    if request.command == pb.HLT:
        return pb.Response(status=pb.Status(code=200), health=pb.HealthResponse(database_ok=True))
    if request.command == pb.HEL:
        return pb.Response(status=pb.Status(code=200), hello=pb.HelloResponse())
    return pb.Response(status=pb.Status(code=500, reason="internal_error", message="fake"))


class _Protocol(ShillingsServerProtocol):
    factory: FakeAppFactory
    greeted = False
    handled = 0
    """Requests read on this connection."""

    def connectionMade(self) -> None:
        self.factory.connections.append(self)

    def connectionLost(self, reason: Any = None) -> None:
        super().connectionLost(reason)
        if self in self.factory.connections:
            self.factory.connections.remove(self)

    async def handle(self, request: pb.Request) -> pb.Response:
        self.factory.received.append(request)
        self.handled += 1
        if self.factory.drop_next > 0 and request.command != pb.HEL:
            self.factory.drop_next -= 1
            self.transport.abortConnection()
            return await self.factory.hang(request)
        if self.factory.secret is not None and not self.greeted:
            if request.command != pb.HEL or request.hello.secret != self.factory.secret:
                self.transport.loseConnection()
                return await self.factory.hang(request)
            self.greeted = True
        return await defer.maybeDeferred(self.factory.responder, request)


class FakeAppFactory(Factory):
    protocol = _Protocol
    noisy = False

    def __init__(self, responder: Responder = ok_health) -> None:
        self.responder = responder
        self.received: list[pb.Request] = []
        self.connections: list[_Protocol] = []
        self.hanging: list[defer.Deferred[pb.Response]] = []
        self.drop_next = 0
        self.secret: str | None = None

    def hang(self, request: pb.Request) -> defer.Deferred[pb.Response]:
        """A responder that never answers (until ``release``)."""
        d: defer.Deferred[pb.Response] = defer.Deferred()
        self.hanging.append(d)
        return d

    def release(self) -> None:
        for d in self.hanging:
            if not d.called:
                d.callback(ok_health(pb.Request(command=pb.HLT)))
        self.hanging.clear()


class FakeApp:
    """A listening fake app server; ``address`` is a client endpoint string."""

    def __init__(self, reactor: Any, responder: Responder = ok_health) -> None:
        self.reactor = reactor
        self.factory = FakeAppFactory(responder)
        self.port: Any = None
        self.port_number = 0

    async def start(self) -> None:
        where = f"tcp:{self.port_number}:interface=127.0.0.1"
        self.port = await serverFromString(self.reactor, where).listen(self.factory)
        self.port_number = self.port.getHost().port

    @property
    def address(self) -> str:
        return f"tcp:127.0.0.1:{self.port_number}"

    async def stop(self) -> None:
        self.factory.release()
        if self.port is not None:
            port, self.port = self.port, None
            await port.stopListening()
        for conn in list(self.factory.connections):
            conn.transport.abortConnection()
