"""RFD: give back all or part of a payment or capture, as its receiver, at most once per
idempotency key. Refunds of one original never add up to more than its amount."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shillings_app.errors import (
    BalanceLimit,
    InsufficientFunds,
    InvalidRequest,
    NotRefundable,
    RefundExceedsPayment,
    TransactionNotFound,
    Unauthenticated,
)
from shillings_app.handlers import Context, status, validation
from shillings_app.handlers.convert import ledger_message, transaction_message
from shillings_app.storage import RequestScope, events, idempotency, money, refunds
from shillings_app.storage.auth import authenticated
from shillings_app.storage.events import NewEvent
from shillings_app.storage.money import LedgerRow
from shillings_app.storage.records import MAX_BALANCE, IdempotencyKey, MoneyResult
from shillings_proto import fields, pb, shapes


@dataclass(frozen=True)
class Refunded:
    """The refund's ledger row and what its idempotency key stores (the refunder's
    balance after it, status 201)."""

    refund: pb.Transaction
    result: MoneyResult


async def handle(ctx: Context, request: pb.Request, scope: RequestScope) -> pb.Response:
    body = request.refund
    user_id, token_id = validation.auth(body.auth)
    if not body.transaction_id:
        raise InvalidRequest("transaction_id is required")
    original_id = fields.public_id(body.transaction_id)
    if original_id is None:
        raise TransactionNotFound()
    amount = validation.amount_or_all(body.amount)
    idem = validation.idempotency_key(body.idempotency_key, "RFD", original_id, amount)
    refunded = await ctx.db.run(
        "refund", refund_txn, user_id, token_id, original_id, amount, idem, scope=scope
    )
    return pb.Response(
        status=status(refunded.result.status, replayed=refunded.result.replayed),
        refund=pb.RefundResponse(refund=refunded.refund, balance=refunded.result.balance),
    )


def refund_txn(
    txn: Any,
    user_id: int,
    token_id: str,
    original_id: str,
    amount: int,
    idem: IdempotencyKey | None,
) -> Refunded:
    """The lookup (token, original, key); both users' rows locked in ascending id order,
    then the original's row; the refundable rest checked under those locks; one UPDATE of
    both balances, the original's ``refunded_amount``, the refund's ledger row, its two
    events (and the key) and COMMIT, in one round trip. ``amount`` 0 refunds all that
    remains; the refunder spends ``available``, never ``balance``. A refusal under the
    locks first replays a duplicate of the same key that committed while this one waited
    for them."""
    with idempotency.remembering_refusals(txn, user_id, idem):
        txn.execute(
            refunds.REFUND_LOOKUP, (token_id, user_id, idempotency.key_of(idem), original_id)
        )
        revoked, kind, sender_id, receiver_id, *stored = txn.fetchone()
        authenticated(True, revoked)
        replayed = idempotency.replay(idem, tuple(stored))
        if replayed is not None:
            return _replayed(txn, replayed)
        if kind is None or int(receiver_id) != user_id:
            raise TransactionNotFound()
        if kind not in shapes.REFUNDABLE:
            raise NotRefundable(f"a {kind} cannot be refunded")
        sender_id = int(sender_id)
        locked = money.lock_users(txn, user_id, sender_id)
        if user_id not in locked:
            raise Unauthenticated()
        refunder, sender = locked[user_id], locked[sender_id]  # a user with transactions stays
        original_amount, already = refunds.lock_original(txn, original_id)
        try:
            amount = _refundable(amount, original_amount - already, refunder, sender)
        except (RefundExceedsPayment, InsufficientFunds, BalanceLimit):
            # A duplicate (same key) that committed while this one waited for the locks.
            late = idempotency.replay_current(txn, user_id, idem)
            if late is None:
                raise
            return _replayed(txn, late)
        at = money.now()
        row = LedgerRow(
            "refund", (user_id, refunder.email), (sender_id, sender.email), amount, at,
            refund_of=original_id,
        )  # fmt: skip
        refund = ledger_message(
            row.transaction_id, "refund", refunder.email, sender.email, amount, at,
            refund_of=original_id,
        )  # fmt: skip
        data = shapes.transaction_json(refund)
        result = MoneyResult(row.transaction_id, refunder.balance - amount, status=201)
        txn.commit_with(
            [
                money.balances_statement({user_id: -amount, sender_id: amount}),
                refunds.add_refunded(original_id, amount),
                money.ledger_statement([row]),
                events.emit_statement(
                    [
                        NewEvent(user_id, "refund.sent", data),
                        NewEvent(sender_id, "refund.received", data),
                    ],
                    at,
                ),
                idempotency.remember_statement([(user_id, idem, result)] if idem else []),
            ]
        )
        return Refunded(refund, result)


def _refundable(amount: int, remaining: int, refunder: money.Locked, sender: money.Locked) -> int:
    """The amount to refund (``amount``, or 0 for all that remains), checked against what
    remains refundable, the refunder's ``available`` and the original sender's limit."""
    if remaining == 0:
        raise RefundExceedsPayment("this transaction has been refunded in full")
    if amount > remaining:
        raise RefundExceedsPayment(
            f"at most {shapes.format_cents(remaining)} of this transaction remains refundable"
        )
    amount = amount or remaining
    if refunder.available < amount:
        raise InsufficientFunds()
    if sender.balance + amount > MAX_BALANCE:
        raise BalanceLimit("the original sender's balance would exceed the limit")
    return amount


def _replayed(txn: Any, result: MoneyResult) -> Refunded:
    """The answer of a replay, its refund read back from the ledger."""
    return Refunded(transaction_message(refunds.ledger_row(txn, result.transaction_id)), result)
