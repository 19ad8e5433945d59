"""HLC: the receiver captures all or part of a hold; the rest is released (SPEC §6)."""

from __future__ import annotations

from typing import Any

from shillings_app.errors import BalanceLimit, ExceedsHold
from shillings_app.handlers import Context, status, validation
from shillings_app.handlers.convert import hold_events, hold_message
from shillings_app.storage import RequestScope, events, holds, idempotency, money
from shillings_app.storage.holds import HoldRecord
from shillings_app.storage.money import LedgerRow
from shillings_app.storage.records import MAX_BALANCE, IdempotencyKey, MoneyResult
from shillings_proto import pb


async def handle(ctx: Context, request: pb.Request, scope: RequestScope) -> pb.Response:
    body = request.capture
    receiver_id, token_id = validation.auth(body.auth)
    hold_id = validation.hold_id(body.hold_id)
    amount = validation.amount_or_all(body.amount)
    idem = validation.idempotency_key(body.idempotency_key, "HLC", hold_id, amount)
    hold, result = await ctx.db.run(
        "hold_capture", hold_capture_txn, receiver_id, token_id, hold_id, amount, idem, scope=scope
    )
    return pb.Response(
        status=status(result.status, replayed=result.replayed),
        capture=pb.CaptureResponse(hold=hold_message(hold), transaction_id=result.transaction_id),
    )


def hold_capture_txn(
    txn: Any,
    receiver_id: int,
    token_id: str,
    hold_id: str,
    amount: int,
    idem: IdempotencyKey | None,
) -> tuple[HoldRecord, MoneyResult]:
    """Lock both users and the hold (``holds.begin_change``); move ``amount`` (0: all of
    the hold) from payer to receiver as a ``capture`` ledger row naming the hold; mark the
    hold captured, which releases the rest; its two events (and the key); the writes and
    COMMIT in one round trip."""
    with idempotency.remembering_refusals(txn, receiver_id, idem):
        change = holds.begin_change(txn, receiver_id, token_id, hold_id, idem)
        if isinstance(change, MoneyResult):
            return holds.hold_by_id(txn, hold_id), change
        hold, receiver = change.hold, change.receiver
        captured = amount or hold.amount
        if captured > hold.amount:
            raise ExceedsHold()
        if receiver.balance + captured > MAX_BALANCE:
            raise BalanceLimit("the receiver's balance would exceed the limit")
        at = change.at
        row = LedgerRow(
            "capture", (hold.payer_id, hold.payer_email), (receiver_id, hold.receiver_email),
            captured, at, hold_id=hold.hold_id,
        )  # fmt: skip
        settle, hold = holds.settle(hold, "captured", at, captured, row.transaction_id)
        result = MoneyResult(row.transaction_id, 0, hold_id=hold.hold_id)
        txn.commit_with(
            [
                money.balances_statement({hold.payer_id: -captured, receiver_id: captured}),
                money.ledger_statement([row]),
                settle,
                events.emit_statement(hold_events(hold, "hold.captured"), at),
                idempotency.remember_statement([(receiver_id, idem, result)] if idem else []),
            ]
        )
        return hold, result
