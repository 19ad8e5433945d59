"""WHC: register a webhook endpoint. Its URL must lead only to addresses the allow list
permits; at most ``MAX_WEBHOOKS`` per user; its secret is made here, stored sealed, and
shown only in this answer (and in a replay of its idempotency key, unsealed for it). A
used key is answered before the URL is vetted again: a replay does not depend on what DNS
or the allow list say now."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from twisted.logger import Logger

from shillings_app.errors import (
    AppError,
    InvalidRequest,
    InvalidUrl,
    ResolutionsBusy,
    TooManyWebhooks,
    Unauthenticated,
)
from shillings_app.handlers import Context, status, validation
from shillings_app.handlers.events import event_type
from shillings_app.handlers.webhooks import webhook_message
from shillings_app.storage import RequestScope, idempotency, money, webhooks
from shillings_app.storage.auth import authenticated
from shillings_app.storage.records import IdempotencyKey
from shillings_app.storage.webhooks import MAX_WEBHOOKS, WebhookRecord
from shillings_app.webhooks.resolver import ResolverBusy
from shillings_app.webhooks.secrets import new_secret, seal, unseal
from shillings_app.webhooks.urls import BadUrl, target
from shillings_proto import pb

log = Logger()


@dataclass(frozen=True)
class Created:
    webhook: WebhookRecord
    replayed: bool = False


def event_types(values: Sequence[str]) -> list[str]:
    """Each an event type, none twice (empty: every type)."""
    checked = [event_type(v, "event_types") for v in values]
    if len(set(checked)) != len(checked):
        raise InvalidRequest("event_types must not name a type twice")
    return checked


async def handle(ctx: Context, request: pb.Request, scope: RequestScope) -> pb.Response:
    body = request.webhook_create
    user_id, token_id = validation.auth(body.auth)
    types = event_types(body.event_types)
    key = ctx.config.webhook_key
    if key is None:
        raise AppError("webhooks are not configured on this server (SHILLINGS_WEBHOOK_KEY)")
    idem = validation.idempotency_key(body.idempotency_key, "WHC", body.url, *types)
    created: Created | None = None
    secret = ""
    if idem is not None:
        # A replay answers what the first use answered, whatever the URL's host resolves
        # to now or the allow list says now: the key is read before the URL is vetted.
        created = await ctx.db.run(
            "webhook_replay", replay_txn, user_id, token_id, idem, scope=scope
        )
    if created is None:
        await vet(ctx, body.url, user_id)
        webhook_id = str(uuid.uuid4())
        secret = new_secret()
        created = await ctx.db.run(
            "webhook_create",
            create_txn,
            user_id,
            token_id,
            webhook_id,
            body.url,
            types,
            seal(secret, key, webhook_id),
            idem,
            scope=scope,
        )
    webhook = created.webhook
    if created.replayed:
        secret = unseal(webhook.secret_sealed, key, webhook.webhook_id)
    return pb.Response(
        status=status(201, replayed=created.replayed),
        webhook_create=pb.WebhookCreateResponse(webhook=webhook_message(webhook, secret)),
    )


async def vet(ctx: Context, url: str, user_id: int) -> None:
    """``InvalidUrl`` unless ``url`` has an acceptable form and leads only to addresses the
    allow list permits (its host resolved by ``ctx.resolver``)."""
    try:
        await target(url, ctx.config.webhook_allow, ctx.resolver)
    except BadUrl as e:
        log.info("webhook url refused for user {user_id}: {why}", user_id=user_id, why=str(e))
        raise InvalidUrl(str(e)) from None
    except ResolverBusy:
        raise ResolutionsBusy() from None


def replay_txn(txn: Any, user_id: int, token_id: str, idem: IdempotencyKey) -> Created | None:
    """The endpoint an earlier use of ``idem`` created (None: the key is unused;
    ``IdempotencyKeyReused``: it was used for another request)."""
    return _earlier(txn, user_id, token_id, idem)


def create_txn(
    txn: Any,
    user_id: int,
    token_id: str,
    webhook_id: str,
    url: str,
    types: list[str],
    sealed: bytes,
    idem: IdempotencyKey | None,
) -> Created:
    """The lookup (token, key), the user's row locked (so concurrent registrations count
    one after another and a sixth cannot slip in), the count, the row (and the key)."""
    with idempotency.remembering_refusals(txn, user_id, idem):
        earlier = _earlier(txn, user_id, token_id, idem)
        if earlier is not None:
            return earlier
        balance = webhooks.lock_user(txn, user_id)
        if balance is None:
            raise Unauthenticated()
        if webhooks.count_live(txn, user_id) >= MAX_WEBHOOKS:
            racing = idempotency.replay_current(txn, user_id, idem)
            if racing is not None:  # this request's own first attempt made the fifth
                return _replayed(txn, user_id, racing.transaction_id)
            raise TooManyWebhooks(
                f"at most {MAX_WEBHOOKS} webhooks per user; delete one (DELETE /v1/webhooks/{{id}})"
            )
        record = webhooks.insert(
            txn,
            webhook_id=webhook_id,
            user_id=user_id,
            url=url,
            event_types=types,
            secret_sealed=sealed,
            at=money.now(),
        )
        idempotency.remember_created(txn, user_id, idem, webhook_id, balance, 201)
        return Created(record)


def _earlier(txn: Any, user_id: int, token_id: str, idem: IdempotencyKey | None) -> Created | None:
    """The lookup: the token checked, then what an earlier use of ``idem`` created."""
    txn.execute(money.TOPUP_LOOKUP, (token_id, user_id, idempotency.key_of(idem)))
    revoked, *stored = txn.fetchone()
    authenticated(True, revoked)
    earlier = idempotency.replayed_id(idem, tuple(stored))
    return None if earlier is None else _replayed(txn, user_id, earlier)


def _replayed(txn: Any, user_id: int, webhook_id: str) -> Created:
    """The endpoint an earlier use of the request's key created (read current: it may have
    been committed after this transaction's snapshot)."""
    found = webhooks.find(txn, user_id, webhook_id, current=True)
    if found is None:
        raise AppError(f"idempotency key names a missing webhook {webhook_id}")
    return Created(found, replayed=True)
