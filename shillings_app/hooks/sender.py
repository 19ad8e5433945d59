"""Sending one delivery: the event JSON ``POST``ed by Twisted's ``Agent``, signed per
Standard Webhooks with the ``standardwebhooks`` package. The URL is checked again by the
registration's rules (``webhooks/urls.py``: the host resolved, every address permitted by
``SHILLINGS_WEBHOOK_ALLOW``) at each send, and the connection goes to the vetted
address itself (a DNS answer that changes between the check and the connect cannot lead
anywhere else). Redirects are not followed. The whole send has a deadline, and a send cut
short by it closes its connection. The reply's body is never decoded (treq's client asks
for gzip and inflates whatever comes: a small reply could cost seconds of CPU) and is
thrown away as it comes; past ``BODY_LIMIT`` bytes the connection is closed instead."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from io import BytesIO
from typing import Any, cast

from OpenSSL.SSL import Error as TLSError
from service_identity.exceptions import VerificationError
from standardwebhooks import Webhook
from twisted.internet import defer
from twisted.internet.endpoints import TCP4ClientEndpoint, TCP6ClientEndpoint, wrapClientTLS
from twisted.internet.error import (
    ConnectError,
    ConnectionRefusedError,
    DNSLookupError,
    TimeoutError,
)
from twisted.internet.interfaces import IPushProducer, IStreamClientEndpoint
from twisted.internet.protocol import Protocol, connectionDone
from twisted.python.failure import Failure
from twisted.web.client import (
    Agent,
    BrowserLikePolicyForHTTPS,
    FileBodyProducer,
    HTTPConnectionPool,
    RequestTransmissionFailed,
    ResponseFailed,
    ResponseNeverReceived,
    _HTTP11ClientFactory,
)
from twisted.web.http_headers import Headers
from twisted.web.iweb import IAgentEndpointFactory
from zope.interface import implementer

from shillings_app.handlers.convert import rfc3339
from shillings_app.storage.deliveries import Claimed, Outcome
from shillings_app.webhooks.allow import Allow, IPAddress
from shillings_app.webhooks.resolver import Resolver
from shillings_app.webhooks.urls import BadUrl, target
from shillings_proto import pb, shapes

USER_AGENT = b"Shillings-Webhooks/1"
REFUSED = "refused:"
"""Prefix of the error of an attempt the allow list stopped (nothing was sent)."""
SECRET = "secret:"
"""Prefix of the error of an attempt whose signing secret would not unseal (nothing sent)."""
BODY_LIMIT = 64 * 1024
"""The most of a reply's body read (and thrown away): a longer one closes the connection;
the status line had decided the outcome already."""


def payload(claimed: Claimed) -> str:
    """The body of a delivery: ``{event_id, type, created_at, data}`` (SPEC §7)."""
    event = pb.Event(
        event_id=claimed.event_id,
        type=claimed.event_type,
        created_at=rfc3339(claimed.event_created_at),
        data_json=claimed.event_data,
    )
    return json.dumps(
        shapes.event_json(event),
        separators=(",", ":"),
        ensure_ascii=False,
    )


def signed_headers(secret: str, msg_id: str, body: str, at: datetime) -> Headers:
    """The Standard Webhooks headers of ``body`` sent at ``at`` as message ``msg_id``."""
    signature = Webhook(secret).sign(msg_id, at, body)
    return Headers(
        {
            b"content-type": [b"application/json"],
            b"user-agent": [USER_AGENT],
            b"webhook-id": [msg_id.encode("ascii")],
            b"webhook-timestamp": [str(int(at.timestamp())).encode("ascii")],
            b"webhook-signature": [signature.encode("ascii")],
        }
    )


@implementer(IAgentEndpointFactory)
class _Pinned:
    """Connects to ``address`` (already vetted) whatever the URL's host resolves to now;
    TLS still checks the certificate against the URL's host name."""

    def __init__(self, reactor: Any, address: IPAddress, timeout: float) -> None:
        self._reactor = reactor
        self._address = address
        self._timeout = timeout

    def endpointForURI(self, uri: Any) -> IStreamClientEndpoint:
        kind = TCP6ClientEndpoint if self._address.version == 6 else TCP4ClientEndpoint
        tcp = kind(self._reactor, str(self._address), uri.port, timeout=self._timeout)
        if uri.scheme != b"https":
            return tcp
        policy = BrowserLikePolicyForHTTPS()
        return wrapClientTLS(policy.creatorForNetloc(uri.host, uri.port), tcp)


def _timed_out(_result: object, timeout: float) -> Failure:
    """What a send cancelled by its deadline ends with, whatever the cancelled step raised."""
    return Failure(defer.TimeoutError(f"timed out after {timeout:g} s"))


_TLS_CAUSES: tuple[tuple[type[BaseException], str], ...] = (
    (VerificationError, "TLS certificate not valid for the host"),
    (TLSError, "TLS handshake failed"),
)
"""What a failed exchange's first cause says, by its type, when it is a TLS failure."""
_FAILURES: tuple[tuple[type[BaseException], str], ...] = (
    (ResponseNeverReceived, "connection closed before an answer"),
    (RequestTransmissionFailed, "connection failed while sending"),
    (ResponseFailed, "connection failed while reading the answer"),
    (ConnectionRefusedError, "connection refused"),
    (DNSLookupError, "host name not resolved"),
    (ConnectError, "cannot connect"),
)
"""What a failed send says, by the type of its error (the first that matches)."""


def describe(error: BaseException, timeout: float) -> str:
    """A short reason for a failed send, fit for the endpoint's owner (the deliveries list
    shows it): a sentence, never an exception's representation."""
    if isinstance(error, defer.TimeoutError | TimeoutError):
        return f"timed out after {timeout:g} s"
    if isinstance(error, ResponseFailed | RequestTransmissionFailed) and error.reasons:
        cause = error.reasons[0].value
        said = next((said for kind, said in _TLS_CAUSES if isinstance(cause, kind)), None)
        if said is not None:
            return said
    said = next((said for kind, said in _FAILURES if isinstance(error, kind)), None)
    return said if said is not None else f"send failed ({type(error).__name__})"


class _Discard(Protocol):
    """Reads a reply's body and throws it away. Past ``BODY_LIMIT`` bytes, or when the
    send's deadline cancels ``done``, it closes the connection (``stopProducing``: the
    socket stops being read and is closed) instead of reading on."""

    def __init__(self) -> None:
        self.read = 0
        self.done: defer.Deferred[None] = defer.Deferred(lambda _d: self._close())

    def dataReceived(self, data: bytes) -> None:
        self.read += len(data)
        if self.read > BODY_LIMIT:
            self._close()

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        if not self.done.called:
            self.done.callback(None)

    def _close(self) -> None:
        if self.transport is not None:
            cast(IPushProducer, self.transport).stopProducing()


class _QuietClientFactory(_HTTP11ClientFactory):
    """Twisted's HTTP client factory without its "Starting factory" and "Stopping factory"
    log lines (two per connection to an endpoint)."""

    noisy = False


class Sender:
    """Sends deliveries; keeps connections to endpoints open between them."""

    def __init__(
        self, reactor: Any, allow: Allow, timeout: float, concurrency: int, resolver_threads: int
    ) -> None:
        self._reactor = reactor
        self._allow = allow
        self.resolver = Resolver(
            reactor, threads=min(concurrency, resolver_threads), queue=concurrency
        )
        """Host names resolved in at most ``resolver_threads`` threads; never busy (at most
        ``concurrency`` sends at once)."""
        self.timeout = timeout
        self._pool = HTTPConnectionPool(reactor, persistent=True)
        self._pool.maxPersistentPerHost = concurrency
        self._pool.cachedConnectionTimeout = 30
        self._pool.retryAutomatically = False
        self._pool._factory = _QuietClientFactory  # no log line per connection opened

    async def send(self, claimed: Claimed, secret: str) -> Outcome:
        """POST ``claimed``'s event to its endpoint; its outcome (never raises)."""
        started = time.monotonic()
        sending = defer.ensureDeferred(self._post(claimed, secret))
        sending.addTimeout(self.timeout, self._reactor, onTimeoutCancel=_timed_out)
        try:
            status, error = await sending
        except BadUrl as e:
            status, error = 0, f"{REFUSED} {e}"
        except Exception as e:
            status, error = 0, describe(e, self.timeout)
        return Outcome(status, error[:255], int((time.monotonic() - started) * 1000))

    async def _post(self, claimed: Claimed, secret: str) -> tuple[int, str]:
        vetted = await target(claimed.url, self._allow, self.resolver)
        agent = Agent.usingEndpointFactory(
            self._reactor,
            _Pinned(self._reactor, vetted.addresses[0], self.timeout),
            pool=self._pool,
        )
        body = payload(claimed)
        response = await agent.request(
            b"POST",
            claimed.url.encode("ascii"),
            signed_headers(secret, claimed.event_id, body, datetime.now(UTC)),
            FileBodyProducer(BytesIO(body.encode("utf-8"))),
        )
        if response.length != 0:
            discard = _Discard()
            response.deliverBody(discard)
            await discard.done
        code = int(response.code)
        if 200 <= code < 300:
            return code, ""
        if 300 <= code < 400:
            return code, f"HTTP {code}: redirect not followed"
        return code, f"HTTP {code}"

    async def close(self) -> None:
        await self._pool.closeCachedConnections()
