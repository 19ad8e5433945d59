"""The statements of refunds (SPEC §6). The rules that choose among them live in
``handlers/refund.py:refund_txn``; moving the money and writing the ledger row are
``storage/money.py``'s, as for a payment."""

from __future__ import annotations

from typing import Any

from shillings_app.storage.auth import REVOKED
from shillings_app.storage.database import Statement
from shillings_app.storage.idempotency import JOINED, STORED
from shillings_app.storage.records import TRANSACTION_COLUMNS, TransactionRecord

REFUND_LOOKUP = (
    f"SELECT {REVOKED}, t.kind, t.sender_id, t.receiver_id, {STORED}{JOINED}"
    " LEFT JOIN transactions AS t ON t.transaction_id = %s"
)
"""One round trip for what a refund checks before locking (a plain read: a ledger row's
kind and parties never change): is the token revoked, the original's kind, sender and
receiver (NULLs when there is none), and the idempotency key's earlier use
(``idempotency.STORED``). Parameters: token id, user id, key, original transaction id."""


def lock_original(txn: Any, transaction_id: str) -> tuple[int, int]:
    """Lock the original's row and return its (amount, refunded_amount) as committed now.
    Taken after both users' rows, like every change of ``refunded_amount``."""
    txn.execute(
        "SELECT amount, refunded_amount FROM transactions WHERE transaction_id = %s FOR UPDATE",
        (transaction_id,),
    )
    amount, refunded = txn.fetchone()
    return int(amount), int(refunded)


def add_refunded(transaction_id: str, amount: int) -> Statement:
    """Count ``amount`` more cents as refunded of the original (its CHECK keeps the total
    within the original's amount)."""
    return Statement(
        "UPDATE transactions SET refunded_amount = refunded_amount + %s WHERE transaction_id = %s",
        (amount, transaction_id),
    )


def ledger_row(txn: Any, transaction_id: str) -> TransactionRecord:
    """A ledger row by its public id, as committed now (a replayed refund's answer is read
    back from it; a locking read, as the duplicate replayed may have committed after this
    transaction's snapshot)."""
    txn.execute(
        f"SELECT {TRANSACTION_COLUMNS} FROM transactions WHERE transaction_id = %s"
        " LOCK IN SHARE MODE",
        (transaction_id,),
    )
    return TransactionRecord(*txn.fetchone())
