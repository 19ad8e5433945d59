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
from shillings_app.storage import RequestScope, idempotency, money
from shillings_app.storage.auth import authenticated
from shillings_app.storage.records import MAX_BALANCE, IdempotencyKey, MoneyResult
from shillings_proto import fields, pb


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
    """4 statements: the lookup (token, receiver, key), both rows locked in ascending id
    order, one UPDATE of both balances, the ledger row (and the key); then COMMIT."""
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
    sender_balance, sender_email = locked[sender_id]
    receiver_balance, email = locked[receiver_id]
    if sender_balance < amount:
        raise InsufficientFunds()
    if receiver_balance + amount > MAX_BALANCE:
        raise BalanceLimit("the receiver's balance would exceed the limit")
    money.move(txn, sender_id, receiver_id, amount)
    transaction_id = money.insert_transaction(
        txn,
        kind="payment",
        sender=(sender_id, sender_email),
        receiver=(receiver_id, email),
        amount=amount,
    )
    result = MoneyResult(transaction_id, sender_balance - amount)
    idempotency.remember(txn, sender_id, idem, result)
    return result
