"""TPU: add money to the caller's own balance, at most once per idempotency key."""

from __future__ import annotations

from typing import Any

from shillings_app.errors import BalanceLimit, Unauthenticated
from shillings_app.handlers import Context, status, validation
from shillings_app.handlers.convert import ledger_message
from shillings_app.storage import RequestScope, events, idempotency, money
from shillings_app.storage.auth import authenticated
from shillings_app.storage.events import NewEvent
from shillings_app.storage.records import MAX_BALANCE, IdempotencyKey, MoneyResult
from shillings_proto import pb, shapes


async def handle(ctx: Context, request: pb.Request, scope: RequestScope) -> pb.Response:
    body = request.topup
    user_id, token_id = validation.auth(body.auth)
    amount = validation.amount(body.amount)
    idem = validation.idempotency_key(body.idempotency_key, "TPU", amount)
    result = await ctx.db.run("topup", topup_txn, user_id, token_id, amount, idem, scope=scope)
    return pb.Response(
        status=status(result.status, replayed=result.replayed),
        topup=pb.TopupResponse(transaction_id=result.transaction_id, balance=result.balance),
    )


def topup_txn(
    txn: Any, user_id: int, token_id: str, amount: int, idem: IdempotencyKey | None
) -> MoneyResult:
    """The lookup (token, key), the row locked, the balance updated, the ledger row, its
    event (and the key); then COMMIT."""
    txn.execute(money.TOPUP_LOOKUP, (token_id, user_id, idempotency.key_of(idem)))
    revoked, *stored = txn.fetchone()
    authenticated(True, revoked)
    replayed = idempotency.replay(idem, tuple(stored))
    if replayed is not None:
        return replayed
    locked = money.lock_users(txn, user_id)
    if user_id not in locked:
        raise Unauthenticated()
    user = locked[user_id]
    if user.balance + amount > MAX_BALANCE:
        raise BalanceLimit()
    money.credit(txn, user_id, amount)
    at = money.now()
    transaction_id = money.insert_transaction(
        txn, kind="topup", sender=None, receiver=(user_id, user.email), amount=amount, at=at
    )
    data = shapes.transaction_json(
        ledger_message(transaction_id, "topup", None, user.email, amount, at)
    )
    events.emit(txn, [NewEvent(user_id, "topup.succeeded", data)], at)
    result = MoneyResult(transaction_id, user.balance + amount)
    idempotency.remember(txn, user_id, idem, result)
    return result
