"""Persistent protocol connections to every app server, with back-off and bounded calls.

Each app server gets ``connections`` slots, each a ``ClientService`` that connects, sends
the HEL handshake when a shared secret is configured (``prepareConnection``), serves
requests until the connection is lost or the server says it is going away (GoAway: it is
shutting down), then reconnects: at once after a GoAway, else with exponential back-off
(0.1 s doubling up to 2 s; at most 0.25 s while requests wait for a connection, and at once
when a call starts waiting). A call goes to the app server with the fewest requests in
flight (ties rotate), on its first live connection: the requests of one reactor turn to
one server then leave in one write (``eager``'s per-turn writes) and its answers come
back in one; the other connections are spares. Every call has a deadline (``timeout``
seconds after it starts, carried in the request): while no connection is live it waits
for one, and a request the server did not process (GoAway) is sent again, both within
that deadline; a caller never hangs. ``AppUnavailable.no_effect`` says whether the
request surely had no effect (it never reached an app server that processed it).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any, cast

from twisted.application.internet import ClientService
from twisted.application.service import MultiService
from twisted.internet import defer
from twisted.internet.endpoints import clientFromString
from twisted.internet.interfaces import IStreamClientEndpoint
from twisted.internet.protocol import Factory
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from shillings_proto import pb
from shillings_proto.framing import (
    ConnectionLostError,
    NotProcessedError,
    RequestTimeoutError,
    ShillingsClientProtocol,
)

log = Logger()

INITIAL_DELAY = 0.1
MAX_DELAY = 2.0
WANTED_DELAY = 0.25
"""Longest wait between connection attempts while requests wait for a connection."""
MAX_LOST = 3
"""Connections lost under one request (safe to repeat) before it is failed."""


class AppUnavailable(Exception):
    """No app server could answer the request (none connected, connection lost, timeout).

    ``no_effect`` is True when the request surely changed nothing (it was never processed
    by an app server), False when it may have taken effect.
    """

    def __init__(self, message: str, *, no_effect: bool) -> None:
        super().__init__(message)
        self.no_effect = no_effect


def retry_delay(attempt: int) -> float:
    """Seconds before reconnection attempt ``attempt`` (1-based), with 10 % jitter."""
    delay = min(INITIAL_DELAY * 2 ** min(attempt - 1, 20), MAX_DELAY)
    return delay * (1 + random.random() * 0.1)


@implementer(IStreamClientEndpoint)
class _Attempts:
    """``endpoint`` whose connection attempts give up after ``timeout`` seconds and report
    to ``slot`` (to log the first failure and to know when an attempt is in progress)."""

    def __init__(self, slot: _Slot, endpoint: Any, timeout: float, clock: Any) -> None:
        self._slot = slot
        self._endpoint = endpoint
        self._timeout = timeout
        self._clock = clock

    def connect(self, factory: Any) -> defer.Deferred[Any]:
        self._slot.connecting = True
        d: defer.Deferred[Any] = self._endpoint.connect(factory)
        d.addTimeout(self._timeout, self._clock)
        return d.addErrback(self._slot.failed)


class _Slot:
    """One persistent connection to one app server: a ``ClientService`` (reconnects with
    ``retry_delay`` back-off; ``prepareConnection`` does the HEL handshake). After a GoAway
    a new ClientService connects at once while the old connection drains; the old service
    is stopped once the server has closed that connection."""

    def __init__(self, pool: AppPool, address: str) -> None:
        self._pool = pool
        self.address = address
        endpoint = clientFromString(pool.reactor, address)
        self._attempts = _Attempts(self, endpoint, pool.timeout, pool.reactor)
        self._factory = Factory.forProtocol(lambda: ShillingsClientProtocol(pool.reactor))
        self._factory.noisy = False
        self._running = False
        self._service: ClientService | None = None
        self._retiring: set[ClientService] = set()
        """Services whose connection's server said GoAway: draining, closed by the server."""
        self._protocol: Any = None
        self._failures = 0
        self.connecting = False
        """A connection attempt (handshake included) is in progress."""

    def start(self) -> None:
        self._running = True
        self._service = self._new_service()

    def _new_service(self) -> ClientService:
        service = ClientService(
            self._attempts,
            self._factory,
            retryPolicy=self._delay,
            clock=self._pool.reactor,
            prepareConnection=lambda p: self._prepare(p, service),
        )
        service.setServiceParent(self._pool.services)  # started: the pool's is running
        return service

    @property
    def protocol(self) -> ShillingsClientProtocol | None:
        """The live connection of this slot, if any."""
        return cast(ShillingsClientProtocol | None, self._protocol)

    async def stop(self) -> None:
        self._running = False
        services = [s for s in [self._service, *self._retiring] if s is not None]
        self._service = None
        self._retiring.clear()
        await defer.gatherResults(
            [defer.maybeDeferred(s.disownServiceParent) for s in services], consumeErrors=True
        )

    def wake(self) -> None:
        """Try to connect now if this slot waits between attempts (a call is waiting)."""
        service = self._service
        if service is None or self._protocol is not None or self.connecting:
            return
        service.stopService().addCallback(lambda _: self._restart(service))

    def _restart(self, service: ClientService) -> None:
        if self._running and service is self._service and not service.running:
            service.startService()

    def _delay(self, attempt: int) -> float:
        """Seconds before connection attempt ``attempt + 1`` (shorter while requests wait
        for a connection)."""
        delay = retry_delay(max(attempt, self._failures))
        return min(delay, WANTED_DELAY) if self._pool.waiting else delay

    def failed(self, failure: Failure) -> Failure:
        """A connection attempt failed (logged once per outage)."""
        self.connecting = False
        self._failures += 1
        if self._failures == 1 and self._running:
            log.warn(
                "cannot connect to app server {address}: {error}; retrying",
                address=self.address,
                error=_describe(failure.value),
            )
        return failure

    def _prepare(self, protocol: Any, service: ClientService) -> None:
        """Start the handshake on a new connection (then offer it to the pool). Not
        returned to ClientService: a connection lost or a service stopped while its
        ``prepareConnection`` Deferred is pending leaves its state machine with no
        transition for the loss (automat NoTransition, Twisted 26.10), so the connection
        counts as made and a failed handshake closes it (then ``_delay`` backs off). It
        starts on the next reactor turn, once the service has taken the connection (a call
        made meanwhile must not reach the service inside its own transition)."""
        self._pool.reactor.callLater(
            0, lambda: defer.ensureDeferred(self._offer(protocol, service))
        )

    async def _offer(self, protocol: Any, service: ClientService) -> None:
        try:
            if self._pool.app_secret is not None:
                await self._handshake(protocol)
        except Exception as e:
            protocol.transport.abortConnection()
            if self._running and service is self._service:
                self.failed(Failure(e))
            return
        self.connecting = False
        if self._failures:
            log.info(
                "connected to app server {address} after {attempts} failed attempts",
                address=self.address,
                attempts=self._failures,
            )
        self._failures = 0
        self._protocol = protocol
        self._pool._up(protocol)
        protocol.retired.addCallback(self._gone, protocol, service)

    def _gone(self, going_away: bool, protocol: Any, service: ClientService) -> None:
        self._pool._down(protocol)
        if self._protocol is protocol:
            self._protocol = None
        if not self._running or service is not self._service:
            return
        if going_away:
            # Connect at once (to the server's successor, or fail and back off) while
            # the old connection drains its last answers.
            log.info("app server {address} is going away", address=self.address)
            self._retiring.add(service)
            protocol.lost_deferred.addCallback(lambda _: self._retired(service))
            self._service = self._new_service()
        else:
            log.warn("lost connection to app server {address}", address=self.address)

    def _retired(self, service: ClientService) -> None:
        if service in self._retiring:
            self._retiring.discard(service)
            service.disownServiceParent()

    async def _handshake(self, protocol: ShillingsClientProtocol) -> None:
        assert self._pool.app_secret is not None
        response = await protocol.call(
            pb.Request(command=pb.HEL, hello=pb.HelloRequest(secret=self._pool.app_secret)),
            self._pool.timeout,
        )
        if response.status.code != 200:
            raise ConnectionRefusedError(
                f"handshake refused: {response.status.code} {response.status.reason}"
            )


def _describe(error: Exception) -> str:
    return f"{error.__class__.__name__}: {error}".rstrip(": ")


class AppPool:
    """Connections to all app servers; ``call`` sends one request on the least busy one."""

    def __init__(
        self,
        addresses: tuple[str, ...] | list[str],
        *,
        reactor: Any,
        connections: int = 2,
        timeout: float = 5.0,
        app_secret: str | None = None,
    ) -> None:
        self.reactor = reactor
        self.timeout = timeout
        self.app_secret = app_secret
        self.services = MultiService()
        """Every slot's ClientService (connections x servers, plus those draining)."""
        self._slots = [_Slot(self, address) for address in addresses for _ in range(connections)]
        self._live: list[ShillingsClientProtocol] = []
        self._turn = 0
        self._waiters: list[defer.Deferred[None]] = []
        """Calls waiting for a live connection."""
        self._connected: list[defer.Deferred[None]] = []
        """``when_connected`` callers waiting for a live connection."""

    def start(self) -> None:
        self.services.startService()
        for slot in self._slots:
            slot.start()

    async def stop(self) -> None:
        await defer.gatherResults(
            [defer.ensureDeferred(slot.stop()) for slot in self._slots], consumeErrors=True
        )
        await self.services.stopService()

    @property
    def live_connections(self) -> int:
        return len(self._live)

    @property
    def in_flight(self) -> int:
        """Requests sent on live connections and not answered yet."""
        return sum(protocol.in_flight for protocol in self._live)

    @property
    def addresses(self) -> list[str]:
        """The app servers, each once, in configuration order."""
        return list(dict.fromkeys(slot.address for slot in self._slots))

    async def ask_each(self, build: Callable[[], pb.Request]) -> dict[str, pb.Response | None]:
        """Send ``build()`` to every app server on one of its live connections, at once;
        map each address to its Response, or None when it is unreachable or timed out."""
        chosen = {address: first for address, (first, _) in self._servers().items()}

        async def ask(address: str) -> pb.Response | None:
            protocol = chosen.get(address)
            if protocol is None:
                return None
            try:
                return await protocol.call(build(), self.timeout)
            except (RequestTimeoutError, ConnectionLostError, NotProcessedError):
                return None

        answers = await defer.gatherResults(
            [defer.ensureDeferred(ask(address)) for address in self.addresses]
        )
        return dict(zip(self.addresses, answers, strict=True))

    def when_connected(self) -> defer.Deferred[None]:
        """Fires once a connection is live (at once if one is)."""
        if self._live:
            return defer.succeed(None)
        d: defer.Deferred[None] = defer.Deferred(lambda d: self._connected.remove(d))
        self._connected.append(d)
        return d

    @property
    def waiting(self) -> int:
        """Calls waiting for a live connection."""
        return len(self._waiters)

    def _up(self, protocol: ShillingsClientProtocol) -> None:
        self._live.append(protocol)
        waiters, self._waiters = self._waiters + self._connected, []
        self._connected = []
        for d in waiters:
            if not d.called:
                d.callback(None)

    def _down(self, protocol: ShillingsClientProtocol) -> None:
        if protocol in self._live:
            self._live.remove(protocol)

    def _servers(self) -> dict[str, tuple[ShillingsClientProtocol, int]]:
        """Each app server with a usable connection: its first one (in slot order) and the
        requests in flight on all of them."""
        servers: dict[str, tuple[ShillingsClientProtocol, int]] = {}
        for slot in self._slots:
            protocol = slot.protocol
            if protocol is not None and protocol.usable:
                first, load = servers.get(slot.address, (protocol, 0))
                servers[slot.address] = (first, load + protocol.in_flight)
        return servers

    def _pick(self) -> ShillingsClientProtocol | None:
        """The first usable connection of the server with the fewest requests in flight."""
        servers = self._servers()
        if len(servers) < 2:
            return next((first for first, _ in servers.values()), None)
        names = list(servers)
        start = self._turn % len(names)
        self._turn += 1
        return servers[min(names[start:] + names[:start], key=lambda n: servers[n][1])][0]

    async def _connection(self, deadline: float) -> ShillingsClientProtocol | None:
        """A live connection, waiting for one until ``deadline`` (None if none came)."""
        while True:
            protocol = self._pick()
            left = deadline - self.reactor.seconds()
            if protocol is not None or left <= 0:
                return protocol
            d: defer.Deferred[None] = defer.Deferred()
            self._waiters.append(d)
            for slot in self._slots:
                slot.wake()
            d.addTimeout(left, self.reactor)
            try:
                await d
            except defer.TimeoutError:
                if d in self._waiters:
                    self._waiters.remove(d)

    async def call(self, request: pb.Request, *, retry_safe: bool = False) -> pb.Response:
        """Send ``request`` with a deadline ``timeout`` seconds from now; wait for a live
        connection and resend a request the server did not process, within that deadline.
        A request safe to repeat is also resent after a lost connection (a few times)."""
        command = pb.Command.Name(request.command)
        deadline = self.reactor.seconds() + self.timeout
        request.deadline_ms = int(deadline * 1000)
        may_have_run = False
        lost = 0
        while True:
            protocol = await self._connection(deadline)
            left = deadline - self.reactor.seconds()
            if protocol is None or left <= 0:
                why = "no app server connected" if protocol is None else "deadline passed"
                log.warn("{why}; {command} refused", why=why, command=command)
                if may_have_run:
                    raise AppUnavailable("app server did not answer in time", no_effect=False)
                raise AppUnavailable(why, no_effect=True)
            try:
                response = await protocol.call(request, left)
                # An earlier attempt lost with its connection may have committed.
                response.status.no_effect = response.status.no_effect and not may_have_run
                return response
            except NotProcessedError:
                continue
            except RequestTimeoutError:
                log.warn(
                    "app server did not answer {command} within {timeout}s",
                    command=command,
                    timeout=self.timeout,
                )
                raise AppUnavailable("app server did not answer in time", no_effect=False) from None
            except ConnectionLostError:
                may_have_run = True
                lost += 1
                if not retry_safe or lost >= MAX_LOST:
                    log.warn("connection lost during {command}", command=command)
                    raise AppUnavailable("connection to app server lost", no_effect=False) from None
