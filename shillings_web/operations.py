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
    every cached profile is invalidated. One that changes nothing, or carries an
    Idempotency-Key, may be sent again to another app server."""

    command: pb.Command
    field: str
    body: Callable[..., Any]
    touches: Callable[[Identity, Any], tuple[str, ...]] | None = None
    answer_touches: Callable[[pb.Response], tuple[str, ...]] | None = None

    @property
    def changes(self) -> bool:
        """Whether the call may change a profile (so it is sent once, unless keyed)."""
        return self.touches is not None or self.answer_touches is not None


def _posted(parse: Callable[..., Any]) -> Callable[..., Any]:
    """The body of a POST that changes money or holds: JSON fields (``parse`` of the body
    and the path parameters) and the Idempotency-Key header."""

    def build(request: Any, **params: str) -> Any:
        validation.content_type(request.requestHeaders.getRawHeaders(b"content-type"))
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
    "topup": Operation(pb.TPU, "topup", _posted(validation.topup), _caller),
    "pay": Operation(
        pb.PAY, "pay", _posted(validation.pay), lambda i, b: (i.email, b.receiver_email)
    ),
    "transactions": Operation(pb.TXQ, "transactions", lambda r: validation.page(r.args)),
    "hold": Operation(pb.HLD, "hold", _posted(validation.hold), _caller),
    "capture": Operation(
        pb.HLC, "capture", _bodiless(validation.capture), _caller, _hold_parties("capture")
    ),
    "void": Operation(pb.HLV, "void", _bodiless(validation.void), _caller, _hold_parties("void")),
    "holds": Operation(pb.HLQ, "holds", lambda r: validation.holds(r.args)),
}
