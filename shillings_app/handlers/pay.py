"""PAY: move money from the caller to another user, at most once per idempotency key."""

from __future__ import annotations

from typing import Any

from shillings_app.errors import (
    BalanceLimit,
    InsufficientFunds,
    InvalidRequest,
    ReceiverNotFound,
    SelfPayment,
    Unauthenticated,
)
from shillings_app.handlers import Context, status, validation
from shillings_app.handlers.convert import ledger_message
from shillings_app.storage import RequestScope, events, idempotency, money
from shillings_app.storage.auth import authenticated
from shillings_app.storage.events import NewEvent
from shillings_app.storage.records import MAX_BALANCE, IdempotencyKey, MoneyResult
from shillings_proto import fields, pb, shapes


async def handle(ctx: Context, request: pb.Request, scope: RequestScope) -> pb.Response:
    body = request.pay
    sender_id, token_id = validation.auth(body.auth)
    if not body.receiver_email.strip():
        raise InvalidRequest("receiver_email is required")
    receiver_email = fields.email(body.receiver_email, "receiver_email")
    amount = validation.amount(body.amount)
    idem = validation.idempotency_key(body.idempotency_key, "PAY", receiver_email, amount)
    result = await ctx.db.run(
        "pay", pay_txn, sender_id, token_id, receiver_email, amount, idem, scope=scope
    )
    return pb.Response(
        status=status(result.status, replayed=result.replayed),
        pay=pb.PayResponse(transaction_id=result.transaction_id, sender_balance=result.balance),
    )


def pay_txn(
    txn: Any,
    sender_id: int,
    token_id: str,
    receiver_email: str,
    amount: int,
    idem: IdempotencyKey | None,
) -> MoneyResult:
    """5 statements: the lookup (token, receiver, key), both rows locked in ascending id
    order with their holds summed, one UPDATE of both balances, the ledger row, its two
    events (and the key); then COMMIT. The sender spends ``available``, never ``balance``."""
    txn.execute(money.PAY_LOOKUP, (token_id, receiver_email, sender_id, idempotency.key_of(idem)))
    revoked, found_receiver, *stored = txn.fetchone()
    authenticated(True, revoked)
    replayed = idempotency.replay(idem, tuple(stored))
    if replayed is not None:
        return replayed
    if found_receiver is None:
        raise ReceiverNotFound()
    receiver_id = int(found_receiver)
    if receiver_id == sender_id:
        raise SelfPayment()
    locked = money.lock_users(txn, sender_id, receiver_id)
    if sender_id not in locked:
        raise Unauthenticated()
    if receiver_id not in locked:
        raise ReceiverNotFound()
    sender, receiver = locked[sender_id], locked[receiver_id]
    if sender.available < amount:
        replayed = idempotency.replay_current(txn, sender_id, idem)
        if replayed is None:
            raise InsufficientFunds()
        return replayed
    if receiver.balance + amount > MAX_BALANCE:
        raise BalanceLimit("the receiver's balance would exceed the limit")
    money.move(txn, sender_id, receiver_id, amount)
    at = money.now()
    transaction_id = money.insert_transaction(
        txn,
        kind="payment",
        sender=(sender_id, sender.email),
        receiver=(receiver_id, receiver.email),
        amount=amount,
        at=at,
    )
    data = shapes.transaction_json(
        ledger_message(transaction_id, "payment", sender.email, receiver.email, amount, at)
    )
    events.emit(
        txn,
        [
            NewEvent(sender_id, "payment.sent", data),
            NewEvent(receiver_id, "payment.received", data),
        ],
        at,
    )
    result = MoneyResult(transaction_id, sender.balance - amount)
    idempotency.remember(txn, sender_id, idem, result)
    return result
