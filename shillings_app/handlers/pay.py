"""PAY: move money from the caller to another user, at most once per idempotency key.
Concurrent payments are applied in one transaction (group commit, ``shillings_app.batching``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from shillings_app.errors import (
    BalanceLimit,
    InsufficientFunds,
    ReceiverNotFound,
    SelfPayment,
)
from shillings_app.handlers import Context, status, validation
from shillings_app.handlers.convert import ledger_message
from shillings_app.storage import RequestScope, idempotency, money
from shillings_app.storage.auth import authenticated
from shillings_app.storage.batch import MoneyBatch, Outcome
from shillings_app.storage.events import NewEvent
from shillings_app.storage.money import LedgerRow
from shillings_app.storage.records import MAX_BALANCE, IdempotencyKey, MoneyResult
from shillings_proto import pb, shapes


@dataclass(frozen=True)
class Payment:
    """One PAY request, checked for its fields."""

    sender_id: int
    token_id: str
    receiver_email: str
    amount: int
    idem: IdempotencyKey | None


async def handle(ctx: Context, request: pb.Request, scope: RequestScope) -> pb.Response:
    body = request.pay
    sender_id, token_id = validation.auth(body.auth)
    receiver_email = validation.receiver_email(body.receiver_email)
    amount = validation.amount(body.amount)
    idem = validation.idempotency_key(body.idempotency_key, "PAY", receiver_email, amount)
    payment = Payment(sender_id, token_id, receiver_email, amount, idem)
    result = await ctx.batcher("pay", pay_batch_txn).submit(payment, scope)
    return pb.Response(
        status=status(result.status, replayed=result.replayed),
        pay=pb.PayResponse(transaction_id=result.transaction_id, sender_balance=result.balance),
    )


def pay_batch_txn(txn: Any, payments: Sequence[Payment]) -> list[Outcome]:
    """Two round trips for the whole batch: the receivers' ids by email, the rows of every
    sender and receiver locked in ascending id order (holds summed) and the lookup (each
    one's token, receiver, key); then one UPDATE of all balances, the ledger rows, their
    events, the keys and COMMIT. Each payment is applied in turn, spending ``available``,
    never ``balance``."""
    locked, hooked, looked = money.lock_and_lookup(
        txn,
        sorted({p.sender_id for p in payments}),
        [money.Check(p.token_id, p.sender_id, idempotency.key_of(p.idem)) for p in payments],
        [p.receiver_email for p in payments],
    )
    batch = MoneyBatch(txn, locked, hooked)
    outcomes = [
        batch.each(_pay, p.sender_id, p.idem, p, row)
        for p, row in zip(payments, looked, strict=True)
    ]
    batch.commit()
    return outcomes


def _pay(batch: MoneyBatch, payment: Payment, looked: tuple[Any, ...]) -> MoneyResult:
    """The rules of one payment, in the order a lone payment checks them."""
    revoked, found_receiver, *stored = looked
    authenticated(True, revoked)
    sender_id, amount = payment.sender_id, payment.amount
    replayed = batch.replay(sender_id, payment.idem, stored)
    if replayed is not None:
        return replayed
    if found_receiver is None:
        raise ReceiverNotFound()
    receiver_id = int(found_receiver)
    if receiver_id == sender_id:
        raise SelfPayment()
    sender_email = batch.user(sender_id)
    receiver_email = batch.user(receiver_id, ReceiverNotFound)
    if batch.available(sender_id) < amount:
        replayed = batch.replay_current(sender_id, payment.idem)
        if replayed is None:
            raise InsufficientFunds()
        return replayed
    if batch.balance(receiver_id) + amount > MAX_BALANCE:
        raise BalanceLimit("the receiver's balance would exceed the limit")
    row = LedgerRow(
        "payment", (sender_id, sender_email), (receiver_id, receiver_email), amount, batch.at
    )
    data = shapes.transaction_json(
        ledger_message(row.transaction_id, "payment", sender_email, receiver_email, amount, row.at)
    )
    return batch.record(
        row,
        {sender_id: -amount, receiver_id: amount},
        [
            NewEvent(sender_id, "payment.sent", data),
            NewEvent(receiver_id, "payment.received", data),
        ],
        sender_id,
        payment.idem,
        MoneyResult(row.transaction_id, batch.balance(sender_id) - amount),
    )
