"""TPU: add money to the caller's own balance, at most once per idempotency key.
Concurrent top-ups are applied in one transaction (group commit, ``shillings_app.batching``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from shillings_app.errors import BalanceLimit
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
class Topup:
    """One TPU request, checked for its fields."""

    user_id: int
    token_id: str
    amount: int
    idem: IdempotencyKey | None


async def handle(ctx: Context, request: pb.Request, scope: RequestScope) -> pb.Response:
    body = request.topup
    user_id, token_id = validation.auth(body.auth)
    amount = validation.amount(body.amount)
    idem = validation.idempotency_key(body.idempotency_key, "TPU", amount)
    topup = Topup(user_id, token_id, amount, idem)
    result = await ctx.batcher("topup", topup_batch_txn).submit(topup, scope)
    return pb.Response(
        status=status(result.status, replayed=result.replayed),
        topup=pb.TopupResponse(transaction_id=result.transaction_id, balance=result.balance),
    )


def topup_batch_txn(txn: Any, topups: Sequence[Topup]) -> list[Outcome]:
    """Two round trips for the whole batch: the users' rows locked (ascending id; a top-up
    spends nothing, so their holds are not summed) and the lookup (each one's token, key),
    then one UPDATE of all balances, the ledger rows, their events, the keys and COMMIT."""
    locked, hooked, looked = money.lock_and_lookup(
        txn,
        sorted({t.user_id for t in topups}),
        [money.Check(t.token_id, t.user_id, idempotency.key_of(t.idem)) for t in topups],
        held=False,
    )
    batch = MoneyBatch(txn, locked, hooked)
    outcomes = [
        batch.each(_topup, t.user_id, t.idem, t, row) for t, row in zip(topups, looked, strict=True)
    ]
    batch.commit()
    return outcomes


def _topup(batch: MoneyBatch, topup: Topup, looked: tuple[Any, ...]) -> MoneyResult:
    """The rules of one top-up, in the order a lone top-up checks them."""
    revoked, *stored = looked
    authenticated(True, revoked)
    user_id, amount = topup.user_id, topup.amount
    replayed = batch.replay(user_id, topup.idem, stored)
    if replayed is not None:
        return replayed
    email = batch.user(user_id)
    if batch.balance(user_id) + amount > MAX_BALANCE:
        raise BalanceLimit()
    row = LedgerRow("topup", None, (user_id, email), amount, batch.at)
    data = shapes.transaction_json(
        ledger_message(row.transaction_id, "topup", None, email, amount, row.at)
    )
    return batch.record(
        row,
        {user_id: amount},
        [NewEvent(user_id, "topup.succeeded", data)],
        user_id,
        topup.idem,
        MoneyResult(row.transaction_id, batch.balance(user_id) + amount),
    )
