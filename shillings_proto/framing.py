"""Int32-length-prefixed protobuf framing for both ends of the internal protocol."""

from __future__ import annotations

import heapq
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

from google.protobuf.message import DecodeError
from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.protocols.basic import Int32StringReceiver
from twisted.python.failure import Failure

from shillings_proto import MAX_FRAME, pb
from shillings_proto.eager import eager, held, hold_for_turn


class ProtocolError(Exception):
    """The peer broke the protocol or the connection went away."""


class ConnectionLostError(ProtocolError):
    """The connection closed before the response arrived."""


class RequestTimeoutError(ProtocolError):
    """No response arrived within the request's timeout."""


class NotProcessedError(ProtocolError):
    """The request was surely not processed: it could not be sent (no connection), or the
    server announced (GoAway) that it reads nothing past an earlier request. Safe to resend."""


class ShillingsClientProtocol(Int32StringReceiver):
    """Client end: sends Requests, matches Responses by request_id; many in flight.

    One timer per connection watches every request's timeout: it is armed for the
    earliest deadline of a request that was waiting when it was armed; when it fires it
    fails the requests past their deadline and drops the answered ones from its heap (not
    on each answer: a timer per request cost more than the rest of the call)."""

    MAX_LENGTH = MAX_FRAME
    log = Logger()
    transport: Any
    """The stream transport (TCP or unix), set once connected."""

    def __init__(self, clock: IReactorTime | None = None) -> None:
        if clock is None:
            from twisted.internet import reactor as clock  # type: ignore[assignment]
        self._clock: IReactorTime = clock  # type: ignore[assignment]
        self._next_id = 1
        self._pending: dict[int, defer.Deferred[pb.Response]] = {}
        self._deadlines: list[tuple[float, int]] = []
        """A heap of (deadline on this clock, request id); answered ones are left in it."""
        self._watch: Any = None
        """The timer armed for the earliest deadline of a waiting request (None: none)."""
        self.lost_deferred: defer.Deferred[None] = defer.Deferred()
        self.retired: defer.Deferred[bool] = defer.Deferred()
        """Fires once the connection takes no new request: True on the server's GoAway
        (it drains the earlier ones, then closes), False when the connection is lost."""
        self.is_connected = False
        self.going_away = False

    @property
    def in_flight(self) -> int:
        return len(self._pending)

    @property
    def usable(self) -> bool:
        """Connected, and the server has not announced it is going away."""
        return self.is_connected and not self.going_away

    def connectionMade(self) -> None:
        eager(self.transport)
        self.is_connected = True

    def call(self, request: pb.Request, timeout: float = 5.0) -> defer.Deferred[pb.Response]:
        """Send ``request`` (its request_id is assigned here, and its ``deadline_ms`` unless
        set: now + ``timeout`` on this clock); fire with its Response, or fail with
        ``RequestTimeoutError`` after ``timeout``, ``ConnectionLostError`` when the
        connection goes before the answer, ``NotProcessedError`` when it surely was not
        processed."""
        if not self.usable:
            why = "server going away" if self.is_connected else "not connected"
            return defer.fail(NotProcessedError(why))
        request_id = self._next_id
        self._next_id += 1
        request.request_id = request_id
        now = self._clock.seconds()
        if not request.deadline_ms:
            request.deadline_ms = int((now + timeout) * 1000)
        d: defer.Deferred[pb.Response] = defer.Deferred()
        if self._pending:
            hold_for_turn(self.transport)  # busy: more requests may follow this turn
        self._pending[request_id] = d
        heapq.heappush(self._deadlines, (now + timeout, request_id))
        self._watch_until(now + timeout, now)
        self.sendString(request.SerializeToString())
        return d

    def _watch_until(self, deadline: float, now: float) -> None:
        """Have the timer fire by ``deadline`` (``now``: the clock's time)."""
        if self._watch is None:
            self._watch = self._clock.callLater(deadline - now, self._check_deadlines)
        elif deadline < self._watch.getTime():
            self._watch.reset(deadline - now)

    def _check_deadlines(self) -> None:
        """Fail the waiting requests whose deadline has come, drop the answered ones from
        the heap, and watch the next waiting one's deadline (none: no timer)."""
        self._watch = None
        now = self._clock.seconds()
        heap, pending = self._deadlines, self._pending
        while heap:
            deadline, request_id = heap[0]
            if request_id in pending and deadline > now:
                self._watch_until(deadline, now)
                return
            heapq.heappop(heap)
            d = pending.pop(request_id, None)
            if d is not None:
                d.errback(RequestTimeoutError(f"request {request_id} timed out"))

    def stringReceived(self, data: bytes) -> None:
        response = pb.Response()
        try:
            response.ParseFromString(data)
        except DecodeError:
            self.log.warn("unparseable response frame; closing connection")
            self.transport.loseConnection()
            return
        if response.request_id == 0 and response.WhichOneof("body") == "goaway":
            self._go_away(response.goaway.last_request_id)
            return
        d = self._pending.pop(response.request_id, None)
        if d is None:
            self.log.warn(
                "response for unknown request_id {request_id}", request_id=response.request_id
            )
            return
        d.callback(response)

    def _go_away(self, last_request_id: int) -> None:
        """The server answers requests up to ``last_request_id`` and reads no later one:
        those fail with ``NotProcessedError`` now, so they can be sent elsewhere."""
        self.going_away = True
        for request_id in [i for i in self._pending if i > last_request_id]:
            self._pending.pop(request_id).errback(
                NotProcessedError("server going away; request not processed")
            )
        if not self.retired.called:
            self.retired.callback(True)

    def lengthLimitExceeded(self, length: int) -> None:
        self.log.warn("response frame of {length} bytes over limit; closing", length=length)
        self.transport.loseConnection()

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        self.is_connected = False
        pending, self._pending = self._pending, {}
        if self._watch is not None and self._watch.active():
            self._watch.cancel()
        self._watch, self._deadlines = None, []
        for d in pending.values():
            d.errback(ConnectionLostError("connection to app server lost"))
        if not self.retired.called:
            self.retired.callback(False)
        self.lost_deferred.callback(None)


Handler = Callable[[pb.Request], Awaitable[pb.Response]]

_gathering: list[Any] | None = None
"""The transports holding their answers in ``answers_gathered`` (None: outside it)."""


@contextmanager
def answers_gathered() -> Iterator[None]:
    """The answers servers write inside go out at its end, in one system call per
    connection (eager transports; others write as usual): a group-commit batch answers
    many requests, often of one connection, at once."""
    global _gathering
    if _gathering is not None:
        yield
        return
    _gathering = []
    try:
        yield
    finally:
        transports, _gathering = _gathering, None
        for transport in transports:
            transport.release()


class ShillingsServerProtocol(Int32StringReceiver):
    """Server end: parses Requests, hands each to ``handle`` concurrently, writes Responses.

    An unparseable or oversized frame closes the connection; a handler failure
    becomes a 500 ``internal_error`` response. Subclasses implement ``handle``.
    """

    MAX_LENGTH = MAX_FRAME
    log = Logger()
    transport: Any
    """The stream transport (TCP or unix), set once connected."""

    def __init__(self) -> None:
        self._open = True
        self.going_away = False
        self._last_request_id = 0

    async def handle(self, request: pb.Request) -> pb.Response:
        raise NotImplementedError

    def go_away(self) -> None:
        """Stop reading and tell the client which request was the last one read: it may
        send every later one elsewhere. Requests already read are still answered."""
        if self.going_away or not self._open:
            return
        self.going_away = True
        self.transport.pauseProducing()
        notice = pb.Response(goaway=pb.GoAway(last_request_id=self._last_request_id))
        self.sendString(notice.SerializeToString())

    def stringReceived(self, data: bytes) -> None:
        if self.going_away:
            return
        request = pb.Request()
        try:
            request.ParseFromString(data)
        except DecodeError:
            self.log.warn("unparseable request frame from {peer}; closing", peer=self._peer())
            self.transport.loseConnection()
            return
        self._last_request_id = max(self._last_request_id, request.request_id)
        d = defer.ensureDeferred(self.handle(request))
        d.addErrback(self._handler_failed, request)
        d.addCallback(self._send, request)

    def _handler_failed(self, failure: Failure, request: pb.Request) -> pb.Response:
        self.log.failure(
            "unhandled error in command {command} request {request_id}",
            failure,
            command=pb.Command.Name(request.command)
            if request.command in pb.Command.values()
            else request.command,
            request_id=request.request_id,
        )
        return error_response(500, "internal_error", "internal error")

    def _send(self, response: pb.Response, request: pb.Request) -> None:
        response.request_id = request.request_id
        response.command = request.command
        if self._open:
            if _gathering is not None and self.transport not in _gathering:
                if held(self.transport) is not None:
                    _gathering.append(self.transport)
            self.sendString(response.SerializeToString())

    def lengthLimitExceeded(self, length: int) -> None:
        self.log.warn(
            "request frame of {length} bytes over limit from {peer}; closing",
            length=length,
            peer=self._peer(),
        )
        self.transport.loseConnection()

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        self._open = False

    def _peer(self) -> str:
        try:
            return str(self.transport.getPeer())
        except Exception:
            return "?"


def error_response(code: int, reason: str, message: str) -> pb.Response:
    """A Response carrying only an error status."""
    return pb.Response(status=pb.Status(code=code, reason=reason, message=message))
