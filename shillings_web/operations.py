"""The authenticated calls that are one command each (``Operation``): how the HTTP request
becomes the protocol body, and which cached profiles (SPEC §2) the call may change."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shillings_proto import pb
from shillings_web import validation
from shillings_web.auth import Identity


@dataclass(frozen=True)
class Operation:
    """An authenticated call that is one command: how the HTTP request (and the route's
    path parameters) becomes the body (without ``auth``), and whose cached profiles it may
    change. ``touches``: the emails known from the request, bumped before answering,
    whatever the outcome. ``answer_touches``: the emails only the answer names (e.g. a
    hold's payer), bumped when it comes; when no answer comes the users are unknown and
    every cached profile is invalidated. ``creates``: it makes something no profile shows
    (a webhook endpoint). One that changes nothing, or carries an Idempotency-Key, may be
    sent again to another app server."""

    route: str
    method: str
    command: pb.Command
    field: str
    body: Callable[..., Any]
    touches: Callable[[Identity, Any], tuple[str, ...]] | None = None
    answer_touches: Callable[[pb.Response], tuple[str, ...]] | None = None
    creates: bool = False

    @property
    def changes(self) -> bool:
        """Whether the call may change something (so it is sent once, unless keyed)."""
        return self.touches is not None or self.answer_touches is not None or self.creates


def _posted(parse: Callable[..., Any]) -> Callable[..., Any]:
    """The body of a POST that changes money or holds: JSON fields (``parse`` of the body
    and the path parameters) and the Idempotency-Key header."""

    def build(request: Any, **params: str) -> Any:
        validation.body_headers(request.requestHeaders)
        body = parse(request.body(), **params)
        header = request.requestHeaders.getRawHeaders(b"idempotency-key")
        body.idempotency_key = validation.idempotency_key(header)
        return body

    return build


def _bodiless(parse: Callable[..., Any]) -> Callable[..., Any]:
    """Like ``_posted`` for a POST whose body may be empty (no Content-Type then)."""
    posted = _posted(parse)

    def build(request: Any, **params: str) -> Any:
        if request.body().strip():
            return posted(request, **params)
        body = parse(b"", **params)
        header = request.requestHeaders.getRawHeaders(b"idempotency-key")
        body.idempotency_key = validation.idempotency_key(header)
        return body

    return build


def _hold_parties(field: str) -> Callable[[pb.Response], tuple[str, ...]]:
    """The emails of the hold in the answer's ``field``."""

    def parties(response: pb.Response) -> tuple[str, ...]:
        hold = getattr(response, field).hold
        return (hold.payer_email, hold.receiver_email)

    return parties


def _caller(identity: Identity, _body: Any) -> tuple[str, ...]:
    return (identity.email,)


OPERATIONS = {
    "topup": Operation("/v1/topup", "POST", pb.TPU, "topup", _posted(validation.topup), _caller),
    "pay": Operation(
        "/v1/pay",
        "POST",
        pb.PAY,
        "pay",
        _posted(validation.pay),
        lambda i, b: (i.email, b.receiver_email),
    ),
    "refund": Operation(
        "/v1/refunds",
        "POST",
        pb.RFD,
        "refund",
        _posted(validation.refund),
        _caller,
        lambda r: (r.refund.refund.receiver_email,),  # the original sender, credited
    ),
    "transactions": Operation(
        "/v1/transactions", "GET", pb.TXQ, "transactions", lambda r: validation.transactions(r.args)
    ),
    "hold": Operation("/v1/holds", "POST", pb.HLD, "hold", _posted(validation.hold), _caller),
    "capture": Operation(
        "/v1/holds/<hold_id>/capture",
        "POST",
        pb.HLC,
        "capture",
        _bodiless(validation.capture),
        _caller,
        _hold_parties("capture"),
    ),
    "void": Operation(
        "/v1/holds/<hold_id>/void",
        "POST",
        pb.HLV,
        "void",
        _bodiless(validation.void),
        _caller,
        _hold_parties("void"),
    ),
    "holds": Operation("/v1/holds", "GET", pb.HLQ, "holds", lambda r: validation.holds(r.args)),
    "events": Operation("/v1/events", "GET", pb.EVQ, "events", lambda r: validation.events(r.args)),
    "webhook_create": Operation(
        "/v1/webhooks",
        "POST",
        pb.WHC,
        "webhook_create",
        _posted(validation.webhook),
        creates=True,
    ),
    "webhooks": Operation(
        "/v1/webhooks", "GET", pb.WHQ, "webhooks", lambda r: pb.WebhooksRequest()
    ),
    "webhook_delete": Operation(
        "/v1/webhooks/<webhook_id>",
        "DELETE",
        pb.WHD,
        "webhook_delete",
        lambda r, webhook_id: pb.WebhookDeleteRequest(webhook_id=webhook_id),
    ),
    "deliveries": Operation(
        "/v1/webhooks/<webhook_id>/deliveries",
        "GET",
        pb.WHL,
        "deliveries",
        lambda r, webhook_id: validation.deliveries(r.args, webhook_id),
    ),
}
"""Each call by the name of its protocol body field (also its ``answers.JSON`` key and
its route's endpoint name): ``ShillingsApi`` serves each at its ``route`` and ``method``."""
