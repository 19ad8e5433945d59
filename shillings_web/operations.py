"""The plain authenticated calls: each one command, its body built from the HTTP request
(``validation``), sent by ``ShillingsApi._operate`` and answered by ``answers.JSON``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shillings_proto import pb
from shillings_web import validation
from shillings_web.auth import Identity


@dataclass(frozen=True)
class Operation:
    """An authenticated call that is one command: how the HTTP request becomes the body
    (without ``auth``; from the request and the route's path parameters), and whose cached
    profiles it may change (bumped before answering, whatever the outcome). One that changes
    no profile and creates nothing (``creates``), or carries an Idempotency-Key, may be sent
    again to another app server."""

    command: pb.Command
    field: str
    body: Callable[..., Any]
    touches: Callable[[Identity, Any], tuple[str, ...]] | None = None
    creates: bool = False


def _keyed_json(parse: Callable[[bytes], Any]) -> Callable[[Any], Any]:
    """The body of a pay, top-up or webhook registration: JSON fields and the
    Idempotency-Key header."""

    def build(request: Any) -> Any:
        validation.content_type(request.requestHeaders.getRawHeaders(b"content-type"))
        body = parse(request.body())
        header = request.requestHeaders.getRawHeaders(b"idempotency-key")
        body.idempotency_key = validation.idempotency_key(header)
        return body

    return build


OPERATIONS = {
    "topup": Operation(pb.TPU, "topup", _keyed_json(validation.topup), lambda i, b: (i.email,)),
    "pay": Operation(
        pb.PAY, "pay", _keyed_json(validation.pay), lambda i, b: (i.email, b.receiver_email)
    ),
    "transactions": Operation(pb.TXQ, "transactions", lambda r: validation.page(r.args)),
    "events": Operation(pb.EVQ, "events", lambda r: validation.events(r.args)),
    "webhook_create": Operation(
        pb.WHC, "webhook_create", _keyed_json(validation.webhook), creates=True
    ),
    "webhooks": Operation(pb.WHQ, "webhooks", lambda r: pb.WebhooksRequest()),
    "webhook_delete": Operation(
        pb.WHD,
        "webhook_delete",
        lambda r, **path: pb.WebhookDeleteRequest(**path),
    ),
    "deliveries": Operation(
        pb.WHL, "deliveries", lambda r, webhook_id: validation.deliveries(r.args, webhook_id)
    ),
}
"""Each plain call by the name of its protocol body field (also its ``answers.JSON`` key)."""
