"""Persistent protocol connections to every app server, with back-off and fail-fast calls.

Each app server gets ``connections`` slots; each slot connects, sends the HEL handshake
when a shared secret is configured, serves requests until the connection is lost, then
reconnects with exponential back-off (0.1 s doubling up to 2 s). A call goes to the live
connection with the fewest requests in flight (ties rotate), and fails at once with
``AppUnavailable`` when no connection is live, or after ``timeout`` seconds without an
answer: a caller never hangs.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from twisted.internet import defer, task
from twisted.internet.endpoints import clientFromString
from twisted.internet.protocol import Factory
from twisted.logger import Logger

from shillings_proto import messages, pb
from shillings_proto.framing import (
    ConnectionLostError,
    RequestTimeoutError,
    ShillingsClientProtocol,
)

log = Logger()

INITIAL_DELAY = 0.1
MAX_DELAY = 2.0


class AppUnavailable(Exception):
    """No app server could answer the request (none connected, connection lost, timeout)."""


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
        transport: Any = self._protocol.transport if self._protocol is not None else None
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
                try:
                    await self._wait(task.deferLater(self._pool.reactor, retry_delay(attempt)))
                except defer.CancelledError:
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
            await protocol.lost_deferred
            self._pool._down(protocol)
            self._protocol = None
            if self._running:
                log.warn("lost connection to app server {address}", address=self.address)
                attempt = 1
                try:
                    await self._wait(task.deferLater(self._pool.reactor, retry_delay(attempt)))
                except defer.CancelledError:
                    return

    async def _handshake(self, protocol: ShillingsClientProtocol) -> None:
        assert self._pool.app_secret is not None
        response = await self._wait(
            protocol.call(messages.hello(self._pool.app_secret), self._pool.timeout)
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
    def addresses(self) -> list[str]:
        """The app servers, each once, in configuration order."""
        return list(dict.fromkeys(slot.address for slot in self._slots))

    async def ask_each(self, build: Callable[[], pb.Request]) -> dict[str, pb.Response | None]:
        """Send ``build()`` to every app server on one of its live connections, at once;
        map each address to its Response, or None when it is unreachable or timed out."""
        chosen: dict[str, ShillingsClientProtocol] = {}
        for slot in self._slots:
            protocol = slot.protocol
            if protocol is not None and protocol.is_connected:
                chosen.setdefault(slot.address, protocol)

        async def ask(address: str) -> pb.Response | None:
            protocol = chosen.get(address)
            if protocol is None:
                return None
            try:
                return await protocol.call(build(), self.timeout)
            except (RequestTimeoutError, ConnectionLostError):
                return None

        answers = await defer.gatherResults(
            [defer.ensureDeferred(ask(address)) for address in self.addresses]
        )
        return dict(zip(self.addresses, answers, strict=True))

    def _up(self, protocol: ShillingsClientProtocol) -> None:
        self._live.append(protocol)

    def _down(self, protocol: ShillingsClientProtocol) -> None:
        if protocol in self._live:
            self._live.remove(protocol)

    def _pick(self) -> ShillingsClientProtocol | None:
        live = [p for p in self._live if p.is_connected]
        if not live:
            return None
        start = self._turn % len(live)
        self._turn += 1
        rotated = live[start:] + live[:start]
        return min(rotated, key=lambda p: p.in_flight)

    async def call(self, request: pb.Request, *, retry_safe: bool = False) -> pb.Response:
        """Send ``request``; a request safe to repeat is retried once on a lost connection."""
        command = pb.Command.Name(request.command)
        for attempt in (1, 2):
            protocol = self._pick()
            if protocol is None:
                log.warn("no app server connected; {command} refused", command=command)
                raise AppUnavailable("no app server connected")
            try:
                return await protocol.call(request, self.timeout)
            except RequestTimeoutError:
                log.warn(
                    "app server did not answer {command} within {timeout}s",
                    command=command,
                    timeout=self.timeout,
                )
                raise AppUnavailable("app server did not answer in time") from None
            except ConnectionLostError:
                if not retry_safe or attempt == 2:
                    log.warn("connection lost during {command}", command=command)
                    raise AppUnavailable("connection to app server lost") from None
        raise AssertionError("unreachable")
