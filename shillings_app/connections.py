"""The app server's connections from web processes: the Int32 protobuf protocol (handshake,
concurrent requests, back-pressure, deadlines, the request log) and the factory that keeps
track of connections and requests in progress (``AppServer`` in server.py listens with it)."""

from __future__ import annotations

import hmac
import time
from typing import Any

from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime
from twisted.internet.protocol import Factory
from twisted.internet.task import deferLater
from twisted.logger import Logger
from twisted.protocols.policies import TimeoutMixin
from twisted.python.failure import Failure

from shillings_app.config import AppConfig
from shillings_app.dispatch import command_name, dispatch, user_id_of
from shillings_app.errors import Unauthenticated
from shillings_app.handlers import Context
from shillings_app.metrics import AppMetrics
from shillings_app.storage import RequestScope
from shillings_proto import MAX_FRAME, pb
from shillings_proto.batchlog import emit_info
from shillings_proto.eager import eager
from shillings_proto.framing import ShillingsServerProtocol, error_response

MAX_IN_FLIGHT = 512
"""Requests in progress on one connection before it stops reading (back-pressure)."""

request_log = Logger(namespace="shillings.app.request")

REQUEST_LOG_FORMAT = (
    "{command} request_id={request_id} trace_id={trace_id} status={status} reason={reason}"
    " duration_ms={duration_ms} user_id={user_id}"
)
DEFAULT_TIMEOUT_S = 5.0
"""The client's wait when a request carries no deadline (``Request.deadline_ms`` = 0)."""
MAX_COMMIT_MARGIN_S = 1.0


def deadline_for(request: pb.Request, wall_now: float, monotonic_now: float) -> float:
    """The ``time.monotonic()`` after which the request's work may not start or commit.

    The client's deadline is absolute (unix ms on its clock), so time the frame spent
    queued or unread (a stalled server, paused reading) counts against it. A margin is kept
    for the commit and the reply: a quarter of the time left, at most 1 s.
    """
    if request.deadline_ms:
        left = request.deadline_ms / 1000 - wall_now
    else:
        left = DEFAULT_TIMEOUT_S
    return monotonic_now + left - min(MAX_COMMIT_MARGIN_S, max(left, 0.0) / 4)


class AppServerProtocol(ShillingsServerProtocol, TimeoutMixin):
    """One connection from a web process: requests run concurrently, answered as they finish.

    When the factory has a shared secret the first frame must be a HEL carrying it; a peer
    that stalls in the middle of a frame (or before its handshake) is dropped after the
    idle timeout. An idle connection between frames is kept: web processes pool them.
    """

    MAX_LENGTH = MAX_FRAME
    log = Logger()
    transport: Any
    """A TCP or unix stream transport (abortConnection, pause/resumeProducing) once connected."""

    def __init__(self, factory: AppServerFactory) -> None:
        super().__init__()
        self.factory = factory
        self.in_flight = 0
        self._authorized = factory.config.app_secret is None
        self._closing = False
        self._reading_paused = False

    def callLater(self, period: float, func: Any) -> Any:  # TimeoutMixin's clock
        return self.factory.clock.callLater(period, func)

    def connectionMade(self) -> None:
        eager(self.transport)
        self.factory.connections.add(self)
        self._update_timeout()

    def dataReceived(self, data: bytes) -> None:
        super().dataReceived(data)
        self._update_timeout()

    def _update_timeout(self) -> None:
        if self._closing or self._reading_paused:
            self.setTimeout(None)
        elif not self._authorized or self._unprocessed:
            self.setTimeout(self.factory.config.idle_timeout)
        else:
            self.setTimeout(None)

    def timeoutConnection(self) -> None:
        self.log.warn(
            "closing {peer}: {why} for {timeout}s",
            peer=self._peer(),
            why="no handshake" if not self._authorized else "incomplete frame",
            timeout=self.factory.config.idle_timeout,
        )
        self._closing = True
        self.transport.abortConnection()

    def stringReceived(self, data: bytes) -> None:
        if not self._closing:
            super().stringReceived(data)

    async def handle(self, request: pb.Request) -> pb.Response:
        # Runs synchronously up to its first await, so the handshake state is settled before
        # the next frame of the same read is parsed.
        if request.command == pb.HEL:
            return self._hello(request)
        if not self._authorized:
            return self._reject(request, "handshake required")
        self._started()
        start = time.perf_counter()
        scope = RequestScope(deadline_for(request, self.factory.clock.seconds(), time.monotonic()))
        try:
            response = await dispatch(self.factory.ctx, request, scope)
        finally:
            self._finished()
        seconds = time.perf_counter() - start
        command = command_name(request.command)
        self.factory.metrics.observe(command, request, response, seconds)
        emit_info(
            request_log,
            REQUEST_LOG_FORMAT,
            command=command,
            request_id=request.request_id,
            trace_id=request.trace_id or "-",
            status=response.status.code,
            reason=response.status.reason or "-",
            duration_ms=f"{seconds * 1000:.1f}",
            user_id=user_id_of(request, response) or "-",
        )
        return response

    def _hello(self, request: pb.Request) -> pb.Response:
        secret = self.factory.config.app_secret
        if secret is not None and not (
            request.WhichOneof("body") == "hello"
            and hmac.compare_digest(request.hello.secret.encode(), secret.encode())
        ):
            return self._reject(request, "bad handshake secret")
        self._authorized = True
        self._update_timeout()
        return pb.Response(status=pb.Status(code=200, message="OK"), hello=pb.HelloResponse())

    def _reject(self, request: pb.Request, why: str) -> pb.Response:
        """Answer 401 and close: the peer did not prove it knows the shared secret."""
        self.log.warn("closing {peer}: {why}", peer=self._peer(), why=why)
        self._closing = True
        self.factory.clock.callLater(0, self.transport.loseConnection)
        return error_response(Unauthenticated.code, Unauthenticated.reason, why)

    def _started(self) -> None:
        self.in_flight += 1
        self.factory.in_flight += 1
        if self.in_flight >= MAX_IN_FLIGHT and not self._reading_paused:
            self._reading_paused = True
            self.setTimeout(None)
            self.transport.pauseProducing()

    def _finished(self) -> None:
        self.in_flight -= 1
        self.factory.request_finished()
        if self._reading_paused and self.in_flight < MAX_IN_FLIGHT // 2:
            self._reading_paused = False
            if self._open and not self.going_away:
                self.transport.resumeProducing()
                self._update_timeout()

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        super().connectionLost(reason)
        self.setTimeout(None)
        self.factory.connections.discard(self)


class AppServerFactory(Factory):
    """Builds connections and keeps track of them and of the requests in progress."""

    noisy = False

    def __init__(
        self, config: AppConfig, ctx: Context, clock: IReactorTime, metrics: AppMetrics
    ) -> None:
        self.config = config
        self.ctx = ctx
        self.clock = clock
        self.metrics = metrics
        self.connections: set[AppServerProtocol] = set()
        self.in_flight = 0
        self._drained: list[defer.Deferred[None]] = []

    def buildProtocol(self, addr: Any) -> AppServerProtocol:
        return AppServerProtocol(self)

    def request_finished(self) -> None:
        self.in_flight -= 1
        if self.in_flight == 0:
            waiters, self._drained = self._drained, []
            for d in waiters:
                d.callback(None)

    async def wait_closed(self, seconds: float) -> None:
        """Wait until every connection is closed, at most ``seconds``."""
        for _ in range(int(seconds / 0.01)):
            if not self.connections:
                return
            await deferLater(self.clock, 0.01, lambda: None)

    async def wait_drained(self, seconds: float) -> bool:
        """Wait until no request is in progress, at most ``seconds``; True if drained."""
        if self.in_flight == 0:
            return True
        d: defer.Deferred[None] = defer.Deferred()
        self._drained.append(d)
        d.addTimeout(seconds, self.clock)
        try:
            await d
        except defer.TimeoutError:
            return False
        return True
