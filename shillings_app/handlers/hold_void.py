"""HLV: the receiver voids a hold, releasing all of it to the payer (SPEC §6)."""

from __future__ import annotations

from typing import Any

from shillings_app.handlers import Context, status, validation
from shillings_app.handlers.convert import hold_events, hold_message
from shillings_app.storage import RequestScope, events, holds, idempotency
from shillings_app.storage.holds import HoldRecord
from shillings_app.storage.records import IdempotencyKey, MoneyResult
from shillings_proto import pb


async def handle(ctx: Context, request: pb.Request, scope: RequestScope) -> pb.Response:
    body = request.void
    receiver_id, token_id = validation.auth(body.auth)
    hold_id = validation.hold_id(body.hold_id)
    idem = validation.idempotency_key(body.idempotency_key, "HLV", hold_id)
    hold, result = await ctx.db.run(
        "hold_void", hold_void_txn, receiver_id, token_id, hold_id, idem, scope=scope
    )
    return pb.Response(
        status=status(result.status, replayed=result.replayed),
        void=pb.VoidResponse(hold=hold_message(hold)),
    )


def hold_void_txn(
    txn: Any, receiver_id: int, token_id: str, hold_id: str, idem: IdempotencyKey | None
) -> tuple[HoldRecord, MoneyResult]:
    """Lock both users and the hold (``holds.begin_change``), then mark it voided, its two
    events (and the key) and COMMIT in one round trip. No balance moves: the payer's
    ``available`` grows by itself."""
    with idempotency.remembering_refusals(txn, receiver_id, idem):
        change = holds.begin_change(txn, receiver_id, token_id, hold_id, idem)
        if isinstance(change, MoneyResult):
            return holds.hold_by_id(txn, hold_id), change
        at = change.at
        settle, hold = holds.settle(change.hold, "voided", at)
        result = MoneyResult("", 0, hold_id=hold.hold_id)
        txn.commit_with(
            [
                settle,
                events.emit_statement(hold_events(hold, "hold.voided"), at),
                idempotency.remember_statement([(receiver_id, idem, result)] if idem else []),
            ]
        )
        return hold, result
