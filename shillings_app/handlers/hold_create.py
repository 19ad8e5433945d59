"""HLD: reserve part of the caller's available balance for a receiver, at most once per
idempotency key (SPEC §6)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from shillings_app.errors import (
    InsufficientFunds,
    InvalidRequest,
    ReceiverNotFound,
    SelfPayment,
    Unauthenticated,
)
from shillings_app.handlers import Context, status, validation
from shillings_app.handlers.convert import hold_events, hold_message
from shillings_app.storage import RequestScope, events, holds, idempotency, money
from shillings_app.storage.auth import authenticated
from shillings_app.storage.holds import HoldRecord
from shillings_app.storage.records import IdempotencyKey, MoneyResult
from shillings_proto import pb

DEFAULT_EXPIRES_IN = 604_800
"""A hold's life when the request names none: 7 days (SPEC §6)."""
MAX_EXPIRES_IN = 2_592_000
"""The longest a hold may live: 30 days."""


async def handle(ctx: Context, request: pb.Request, scope: RequestScope) -> pb.Response:
    body = request.hold
    payer_id, token_id = validation.auth(body.auth)
    receiver_email = validation.receiver_email(body.receiver_email)
    amount = validation.amount(body.amount)
    expires_in = body.expires_in or DEFAULT_EXPIRES_IN
    shortest = ctx.config.hold_min_expires_in
    if not shortest <= expires_in <= MAX_EXPIRES_IN:
        raise InvalidRequest(f"expires_in must be from {shortest} to {MAX_EXPIRES_IN} seconds")
    idem = validation.idempotency_key(
        body.idempotency_key, "HLD", receiver_email, amount, expires_in
    )
    hold, result = await ctx.db.run(
        "hold_create",
        hold_create_txn,
        payer_id,
        token_id,
        receiver_email,
        amount,
        expires_in,
        idem,
        scope=scope,
    )
    return pb.Response(
        status=status(result.status, replayed=result.replayed),
        hold=pb.HoldResponse(hold=hold_message(hold), available=result.balance),
    )


def hold_create_txn(
    txn: Any,
    payer_id: int,
    token_id: str,
    receiver_email: str,
    amount: int,
    expires_in: int,
    idem: IdempotencyKey | None,
) -> tuple[HoldRecord, MoneyResult]:
    """The lookup (token, receiver, key), both rows locked in ascending id order with their
    holds summed, the hold inserted, its two events (and the key). The payer's
    ``available`` must cover the amount; their balance does not move."""
    with idempotency.remembering_refusals(txn, payer_id, idem):
        txn.execute(
            holds.CREATE_LOOKUP, (token_id, receiver_email, payer_id, idempotency.key_of(idem))
        )
        revoked, found_receiver, *stored = txn.fetchone()
        authenticated(True, revoked)
        replayed = idempotency.replay(idem, tuple(stored))
        if replayed is not None:
            return as_created(holds.hold_by_id(txn, str(replayed.hold_id))), replayed
        if found_receiver is None:
            raise ReceiverNotFound()
        receiver_id = int(found_receiver)
        if receiver_id == payer_id:
            raise SelfPayment()
        locked = money.lock_users(txn, payer_id, receiver_id)
        if payer_id not in locked:
            raise Unauthenticated()
        if receiver_id not in locked:
            raise ReceiverNotFound()
        payer, receiver = locked[payer_id], locked[receiver_id]
        if payer.available < amount:
            replayed = idempotency.replay_current(txn, payer_id, idem)
            if replayed is None:
                raise InsufficientFunds()
            return as_created(holds.hold_by_id(txn, str(replayed.hold_id))), replayed
        at = money.now()
        hold = holds.insert_hold(
            txn, (payer_id, payer.email), (receiver_id, receiver.email), amount, expires_in, at
        )
        events.emit(txn, hold_events(hold, "hold.created"), at)
        result = MoneyResult("", payer.available - amount, 201, hold_id=hold.hold_id)
        idempotency.remember(txn, payer_id, idem, result)
        return hold, result


def as_created(hold: HoldRecord) -> HoldRecord:
    """The hold as its creation answered it (a replay answers the same, whatever became of
    the hold since)."""
    return replace(
        hold,
        state="held",
        captured_amount=0,
        updated_at=hold.created_at,
        capture_transaction_id=None,
    )
