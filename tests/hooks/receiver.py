"""A webhook receiver for tests (Klein, on 127.0.0.1, a random port): it verifies every
delivery with the ``standardwebhooks`` library's own ``Webhook.verify``, and each endpoint
behaves as the test sets it (answers 200, fails, hangs, redirects, holds the request until
released). Tests wait on what arrives (``until``), never on the clock."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from klein import Klein
from standardwebhooks import Webhook, WebhookVerificationError
from twisted.internet import defer
from twisted.web.server import Site

OK, FAIL, HANG, REDIRECT, HOLD = "ok", "fail", "hang", "redirect", "hold"


@dataclass(frozen=True)
class Got:
    """A delivery that passed ``Webhook.verify``."""

    webhook_id: str
    event: dict[str, Any]
    at: float
    """``time.time()`` when it arrived."""


@dataclass
class Endpoint:
    secret: str
    mode: str = OK
    fail_first: int = 0
    """Answer 500 to this many requests first (then behave as ``mode``)."""
    requests: int = 0
    got: list[Got] = field(default_factory=list)


class Receiver:
    """Endpoints ``/hook/<name>``, registered with their secret by ``add``."""

    app = Klein()

    def __init__(self) -> None:
        self.endpoints: dict[str, Endpoint] = {}
        self.bad: list[str] = []
        """Requests that failed verification (must stay empty)."""
        self.held: list[defer.Deferred[bytes]] = []
        self._waiters: list[tuple[Callable[[], bool], defer.Deferred[None]]] = []
        self._hanging: list[defer.Deferred[bytes]] = []
        self.port: Any = None

    async def start(self, reactor: Any) -> None:
        site = Site(self.app.resource())
        site.noisy = False
        site.log = lambda _request: None  # type: ignore[method-assign]
        self.port = reactor.listenTCP(0, site, interface="127.0.0.1")

    async def stop(self) -> None:
        for pending in self._hanging + self.held:
            if not pending.called:
                pending.callback(b"")
        await self.port.stopListening()

    def url(self, name: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port.getHost().port}/hook/{name}"

    def add(self, name: str, secret: str, mode: str = OK, fail_first: int = 0) -> Endpoint:
        self.endpoints[name] = Endpoint(secret, mode, fail_first)
        return self.endpoints[name]

    def ids(self, name: str) -> Counter[str]:
        """How many verified deliveries of each webhook-id endpoint ``name`` got."""
        return Counter(got.webhook_id for got in self.endpoints[name].got)

    def release(self) -> None:
        """Answer 200 to every held request."""
        held, self.held = self.held, []
        for pending in held:
            pending.callback(b"")

    async def until(self, predicate: Callable[[], bool], within: float = 30.0) -> None:
        """Wait until ``predicate()`` holds after some request arrived (at most ``within`` s,
        a deadline against a hang, not a timing assumption)."""
        if predicate():
            return
        from twisted.internet import reactor

        waiting: defer.Deferred[None] = defer.Deferred()
        self._waiters.append((predicate, waiting))
        waiting.addTimeout(within, reactor)
        await waiting

    def _changed(self) -> None:
        for entry in list(self._waiters):
            predicate, waiting = entry
            if not waiting.called and predicate():
                self._waiters.remove(entry)
                waiting.callback(None)

    @app.route("/hook/<name>", methods=["POST"])
    def hook(self, request: Any, name: str) -> Any:
        endpoint = self.endpoints[name]
        endpoint.requests += 1
        try:
            return self._answer(request, name, endpoint)
        finally:
            self._changed()

    def _answer(self, request: Any, name: str, endpoint: Endpoint) -> Any:
        if endpoint.requests <= endpoint.fail_first or endpoint.mode == FAIL:
            request.setResponseCode(500)
            return b"down"
        if endpoint.mode == HANG:
            hanging: defer.Deferred[bytes] = defer.Deferred()
            self._hanging.append(hanging)
            return hanging
        if endpoint.mode == REDIRECT:
            request.setResponseCode(302)
            request.setHeader(b"Location", self.url("target").encode())
            return b""
        body = request.content.read()
        headers = {
            key.decode().lower(): values[0].decode()
            for key, values in request.requestHeaders.getAllRawHeaders()
        }
        try:
            event = Webhook(endpoint.secret).verify(body, headers)
        except WebhookVerificationError as e:
            self.bad.append(f"{name}: {e}")
            request.setResponseCode(400)
            return b"bad signature"
        endpoint.got.append(Got(headers["webhook-id"], event, time.time()))
        if endpoint.mode == HOLD:
            held: defer.Deferred[bytes] = defer.Deferred()
            self.held.append(held)
            return held
        return b""
