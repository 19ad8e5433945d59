"""WHQ, WHD, WHL: the caller's webhook endpoints (never their secrets), deleting one, and one
endpoint's delivery attempts, newest first with an opaque keyset cursor."""

from __future__ import annotations

from typing import Any

from shillings_app.errors import WebhookNotFound
from shillings_app.handlers import Context, pages, status, validation
from shillings_app.handlers.convert import rfc3339
from shillings_app.storage import RequestScope, webhooks
from shillings_app.storage.auth import authenticate
from shillings_app.storage.webhooks import AttemptRecord, WebhookRecord
from shillings_proto import fields, pb


def webhook_message(record: WebhookRecord, secret: str = "") -> pb.Webhook:
    """An endpoint as the API shows it; ``secret`` only in the answer that created it."""
    return pb.Webhook(
        webhook_id=record.webhook_id,
        url=record.url,
        event_types=record.event_types,
        state=record.state,
        secret=secret,
        created_at=rfc3339(record.created_at),
    )


def webhook_id(value: str) -> str:
    """An endpoint id in its canonical form (``fields.public_id``: either case); else
    ``WebhookNotFound`` at once."""
    canonical = fields.public_id(value)
    if canonical is None:
        raise WebhookNotFound()
    return canonical


async def list_(ctx: Context, request: pb.Request, scope: RequestScope) -> pb.Response:
    user_id, token_id = validation.auth(request.webhooks.auth)
    found = await ctx.db.run("webhooks", webhooks_txn, user_id, token_id, scope=scope)
    return pb.Response(
        status=status(),
        webhooks=pb.WebhooksResponse(webhooks=[webhook_message(w) for w in found]),
    )


def webhooks_txn(txn: Any, user_id: int, token_id: str) -> list[WebhookRecord]:
    authenticate(txn, user_id, token_id)
    return webhooks.list_live(txn, user_id)


async def delete(ctx: Context, request: pb.Request, scope: RequestScope) -> pb.Response:
    body = request.webhook_delete
    user_id, token_id = validation.auth(body.auth)
    target = webhook_id(body.webhook_id)
    await ctx.db.run("webhook_delete", delete_txn, user_id, token_id, target, scope=scope)
    return pb.Response(status=status(), webhook_delete=pb.WebhookDeleteResponse())


def delete_txn(txn: Any, user_id: int, token_id: str, target: str) -> None:
    """Mark the caller's endpoint deleted: its pending deliveries are not sent any more
    (the workers check its state) and its delivery log stays readable."""
    authenticate(txn, user_id, token_id)
    if not webhooks.mark_deleted(txn, user_id, target):
        raise WebhookNotFound()


async def deliveries(ctx: Context, request: pb.Request, scope: RequestScope) -> pb.Response:
    body = request.deliveries
    user_id, token_id = validation.auth(body.auth)
    target = webhook_id(body.webhook_id)
    page, next_cursor = await pages.fetch(
        ctx,
        "deliveries",
        deliveries_txn,
        user_id,
        token_id,
        target,
        limit=body.limit,
        cursor=body.cursor,
        scope=scope,
        within=target,
    )
    return pb.Response(
        status=status(),
        deliveries=pb.DeliveriesResponse(
            deliveries=[_delivery(a) for a in page],
            next_cursor=next_cursor,
        ),
    )


def deliveries_txn(
    txn: Any, user_id: int, token_id: str, target: str, limit: int, before_id: int | None
) -> list[AttemptRecord]:
    """The attempts to the caller's endpoint (deleted ones too: the log stays);
    ``WebhookNotFound`` when it is not theirs."""
    authenticate(txn, user_id, token_id)
    found = webhooks.find(txn, user_id, target)
    if found is None:
        raise WebhookNotFound()
    return webhooks.attempts(txn, found.id, limit, before_id)


def _delivery(a: AttemptRecord) -> pb.Delivery:
    return pb.Delivery(
        event_id=a.event_id,
        attempt=a.attempt,
        status_code=a.status_code,
        error=a.error,
        duration_ms=a.duration_ms,
        attempted_at=rfc3339(a.attempted_at),
    )
