"""Persistent protocol connections to every app server, with back-off and bounded calls.

Each app server gets ``connections`` slots; each slot connects, sends the HEL handshake
when a shared secret is configured, serves requests until the connection is lost or the
server says it is going away (GoAway: it is shutting down), then reconnects: at once after
a GoAway, else with exponential back-off (0.1 s doubling up to 2 s; at most 0.25 s while
requests wait for a connection). A call goes to the live connection with the fewest
requests in flight (ties rotate). Every call has a deadline (``timeout`` seconds after it
starts, carried in the request): while no connection is live it waits for one, and a
request the server did not process (GoAway) is sent again, both within that deadline; a
caller never hangs. ``AppUnavailable.no_effect`` says whether the request surely had no
effect (it never reached an app server that processed it).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from twisted.internet import defer, task
from twisted.internet.endpoints import clientFromString
from twisted.internet.protocol import Factory
from twisted.logger import Logger

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


class _Slot:
    """One persistent connection to one app server, re-established whenever it is lost."""

    def __init__(self, pool: AppPool, address: str) -> None:
        self._pool = pool
        self.address = address
        self._endpoint = clientFromString(pool.reactor, address)
        self._factory = Factory.forProtocol(ShillingsClientProtocol)
        self._factory.noisy = False
        self._running = False
        self._waiting: defer.Deferred[Any] | None = None
        self._protocol: ShillingsClientProtocol | None = None
        self._retiring: set[ShillingsClientProtocol] = set()
        """Connections whose server said GoAway: draining, closed by the server."""
        self._done: defer.Deferred[None] | None = None

    def start(self) -> None:
        self._running = True
        self._done = defer.ensureDeferred(self._run())
        self._done.addErrback(
            lambda f: log.failure("connection loop to {address} crashed", f, address=self.address)
        )

    @property
    def protocol(self) -> ShillingsClientProtocol | None:
        """The live connection of this slot, if any."""
        return self._protocol

    async def stop(self) -> None:
        self._running = False
        if self._waiting is not None:
            self._waiting.cancel()
        for protocol in [self._protocol, *self._retiring]:
            transport: Any = protocol.transport if protocol is not None else None
            if transport is not None:
                transport.loseConnection()
        if self._done is not None:
            await self._done

    async def _wait(self, d: defer.Deferred[Any]) -> Any:
        self._waiting = d
        try:
            return await d
        finally:
            self._waiting = None

    async def _run(self) -> None:
        attempt = 0
        while self._running:
            protocol: ShillingsClientProtocol | None = None
            try:
                connecting = self._endpoint.connect(self._factory)
                connecting.addTimeout(self._pool.timeout, self._pool.reactor)
                protocol = await self._wait(connecting)
                if self._pool.app_secret is not None:
                    await self._handshake(protocol)
            except Exception as e:
                if protocol is not None and protocol.transport is not None:
                    protocol.transport.abortConnection()
                if not self._running:
                    return
                attempt += 1
                if attempt == 1:
                    log.warn(
                        "cannot connect to app server {address}: {error}; retrying",
                        address=self.address,
                        error=_describe(e),
                    )
                if not await self._sleep(attempt):
                    return
                continue
            if attempt:
                log.info(
                    "connected to app server {address} after {attempts} failed attempts",
                    address=self.address,
                    attempts=attempt,
                )
            attempt = 0
            self._protocol = protocol
            self._pool._up(protocol)
            going_away = await protocol.retired
            self._pool._down(protocol)
            self._protocol = None
            if going_away:
                # Reconnect at once (to the server's successor, or fail and back off) while
                # the old connection drains its last answers.
                log.info("app server {address} is going away", address=self.address)
                self._retiring.add(protocol)
                protocol.lost_deferred.addCallback(self._retired, protocol)
            elif self._running:
                log.warn("lost connection to app server {address}", address=self.address)
                attempt = 1
                if not await self._sleep(attempt):
                    return

    def _retired(self, _: None, protocol: ShillingsClientProtocol) -> None:
        self._retiring.discard(protocol)

    async def _sleep(self, attempt: int) -> bool:
        """Wait before connection attempt ``attempt + 1`` (shorter while requests wait for
        a connection; cut short when one starts waiting); False once stopped."""
        delay = retry_delay(attempt)
        if self._pool.waiting:
            delay = min(delay, WANTED_DELAY)
        sleep: defer.Deferred[None] = task.deferLater(self._pool.reactor, delay)
        wanted = self._pool.wanted()
        woken = defer.DeferredList([sleep, wanted], fireOnOneCallback=True, consumeErrors=True)
        try:
            await self._wait(woken)  # type: ignore[arg-type]
        except defer.CancelledError:
            return False
        finally:
            if not sleep.called:
                sleep.cancel()
            self._pool.unwant(wanted)
        return self._running

    async def _handshake(self, protocol: ShillingsClientProtocol) -> None:
        assert self._pool.app_secret is not None
        response = await self._wait(
            protocol.call(
                pb.Request(command=pb.HEL, hello=pb.HelloRequest(secret=self._pool.app_secret)),
                self._pool.timeout,
            )
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
        self._slots = [_Slot(self, address) for address in addresses for _ in range(connections)]
        self._live: list[ShillingsClientProtocol] = []
        self._turn = 0
        self._waiters: list[defer.Deferred[None]] = []
        """Calls waiting for a live connection."""
        self._wanted: list[defer.Deferred[None]] = []
        """Slots sleeping between connection attempts, woken when a call starts waiting."""

    def start(self) -> None:
        for slot in self._slots:
            slot.start()

    async def stop(self) -> None:
        await defer.gatherResults(
            [defer.ensureDeferred(slot.stop()) for slot in self._slots], consumeErrors=True
        )

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
        chosen: dict[str, ShillingsClientProtocol] = {}
        for slot in self._slots:
            protocol = slot.protocol
            if protocol is not None and protocol.usable:
                chosen.setdefault(slot.address, protocol)

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

    @property
    def waiting(self) -> int:
        """Calls waiting for a live connection."""
        return len(self._waiters)

    def wanted(self) -> defer.Deferred[None]:
        """Fires when a call starts waiting for a connection."""
        d: defer.Deferred[None] = defer.Deferred()
        self._wanted.append(d)
        return d

    def unwant(self, d: defer.Deferred[None]) -> None:
        if d in self._wanted:
            self._wanted.remove(d)

    def _up(self, protocol: ShillingsClientProtocol) -> None:
        self._live.append(protocol)
        waiters, self._waiters = self._waiters, []
        for d in waiters:
            if not d.called:
                d.callback(None)

    def _down(self, protocol: ShillingsClientProtocol) -> None:
        if protocol in self._live:
            self._live.remove(protocol)

    def _pick(self) -> ShillingsClientProtocol | None:
        live = [p for p in self._live if p.usable]
        if not live:
            return None
        start = self._turn % len(live)
        self._turn += 1
        rotated = live[start:] + live[:start]
        return min(rotated, key=lambda p: p.in_flight)

    async def _connection(self, deadline: float) -> ShillingsClientProtocol | None:
        """A live connection, waiting for one until ``deadline`` (None if none came)."""
        while True:
            protocol = self._pick()
            left = deadline - self.reactor.seconds()
            if protocol is not None or left <= 0:
                return protocol
            d: defer.Deferred[None] = defer.Deferred()
            self._waiters.append(d)
            wanted, self._wanted = self._wanted, []
            for w in wanted:
                if not w.called:
                    w.callback(None)
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
                return await protocol.call(request, left)
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
