"""Payments and top-ups (SPEC §4): one DB transaction each, rows locked in user_id order,
with the idempotency row written in the same transaction."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pymysql

from shillings_app.errors import (
    BalanceLimit,
    IdempotencyKeyReused,
    InsufficientFunds,
    ReceiverNotFound,
    SelfPayment,
    Unauthenticated,
)
from shillings_app.storage.database import ER_DUP_ENTRY, Database, RetryTransaction, error_code
from shillings_app.storage.records import (
    MAX_BALANCE,
    IdempotencyKey,
    PayResult,
    Replay,
    TopupResult,
)


def _stored(idem: IdempotencyKey, request_hash: Any, response: Any) -> Replay:
    """The response stored under ``idem``; ``IdempotencyKeyReused`` if the request differs."""
    if bytes(request_hash) != idem.request_hash:
        raise IdempotencyKeyReused()
    return Replay(response=bytes(response))


_PAY_LOOKUP = (
    "SELECT EXISTS(SELECT 1 FROM revoked_tokens WHERE jti = %s),"
    " (SELECT user_id FROM users WHERE email = %s),"
    " k.request_hash, k.response"
    " FROM (SELECT 1) AS one LEFT JOIN idempotency_keys AS k"
    " ON k.user_id = %s AND k.idem_key = %s"
)
"""One round trip for what a payment checks before locking: is the token revoked, who is
the receiver, and was this idempotency key used (its hash and stored response, or NULLs)."""

_TOPUP_LOOKUP = (
    "SELECT EXISTS(SELECT 1 FROM revoked_tokens WHERE jti = %s), k.request_hash, k.response"
    " FROM (SELECT 1) AS one LEFT JOIN idempotency_keys AS k"
    " ON k.user_id = %s AND k.idem_key = %s"
)
"""The same for a top-up: revoked token, and the idempotency key's earlier use."""


def _remember(txn: Any, user_id: int, idem: IdempotencyKey | None, response: bytes) -> None:
    """Store the response under ``idem``; a concurrent duplicate that committed first makes
    this attempt roll back and retry, and the retry replays the winner's response."""
    if idem is None:
        return
    try:
        txn.execute(
            "INSERT INTO idempotency_keys"
            " (user_id, idem_key, command, request_hash, response, created_at)"
            " VALUES (%s, %s, %s, %s, %s, UTC_TIMESTAMP(6))",
            (user_id, idem.key, idem.command, idem.request_hash, response),
        )
    except pymysql.err.IntegrityError as e:
        if error_code(e) == ER_DUP_ENTRY:
            raise RetryTransaction() from None
        raise


def _insert_transaction(
    txn: Any,
    *,
    kind: str,
    sender: tuple[int, str] | None,
    receiver: tuple[int, str],
    amount: int,
) -> str:
    transaction_id = str(uuid.uuid4())
    txn.execute(
        "INSERT INTO transactions (transaction_id, kind, sender_id, sender_email,"
        " receiver_id, receiver_email, amount, created_at)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, UTC_TIMESTAMP(6))",
        (
            transaction_id,
            kind,
            sender[0] if sender else None,
            sender[1] if sender else None,
            receiver[0],
            receiver[1],
            amount,
        ),
    )
    return transaction_id


class MoneyStore:
    db: Database

    async def pay(
        self,
        *,
        sender_id: int,
        token_id: str,
        receiver_email: str,
        amount: int,
        idempotency: IdempotencyKey | None,
        encode: Callable[[PayResult], bytes],
    ) -> PayResult | Replay:
        """Move ``amount`` cents from the sender to the user with ``receiver_email``.

        ``encode`` turns the result into the response bytes stored with the idempotency key.
        """

        def txn_fn(txn: Any) -> PayResult | Replay:
            txn.execute(
                _PAY_LOOKUP,
                (token_id, receiver_email, sender_id, idempotency.key if idempotency else ""),
            )
            revoked, found_receiver, request_hash, stored = txn.fetchone()
            if revoked:
                raise Unauthenticated("token revoked")
            if idempotency is not None and request_hash is not None:
                return _stored(idempotency, request_hash, stored)
            if found_receiver is None:
                raise ReceiverNotFound()
            receiver_id = int(found_receiver)
            if receiver_id == sender_id:
                raise SelfPayment()
            # One statement locks both rows; InnoDB walks the primary key upwards, so they are
            # locked in ascending user_id order and opposite payments cannot deadlock.
            txn.execute(
                "SELECT user_id, balance, email FROM users WHERE user_id IN (%s, %s)"
                " ORDER BY user_id FOR UPDATE",
                (sender_id, receiver_id),
            )
            locked = {int(row[0]): (int(row[1]), row[2]) for row in txn.fetchall()}
            if sender_id not in locked:
                raise Unauthenticated()
            if receiver_id not in locked:
                raise ReceiverNotFound()
            sender_balance, sender_email = locked[sender_id]
            receiver_balance, receiver_email_db = locked[receiver_id]
            if sender_balance < amount:
                raise InsufficientFunds()
            if receiver_balance + amount > MAX_BALANCE:
                raise BalanceLimit("the receiver's balance would exceed the limit")
            txn.execute(
                "UPDATE users SET balance = balance + IF(user_id = %s, -%s, %s),"
                " updated_at = UTC_TIMESTAMP(6) WHERE user_id IN (%s, %s)",
                (sender_id, amount, amount, sender_id, receiver_id),
            )
            transaction_id = _insert_transaction(
                txn,
                kind="payment",
                sender=(sender_id, sender_email),
                receiver=(receiver_id, receiver_email_db),
                amount=amount,
            )
            result = PayResult(
                transaction_id=transaction_id,
                sender_id=sender_id,
                receiver_id=receiver_id,
                sender_balance=sender_balance - amount,
            )
            if idempotency is not None:
                _remember(txn, sender_id, idempotency, encode(result))
            return result

        return await self.db.run("pay", txn_fn)

    async def topup(
        self,
        *,
        user_id: int,
        token_id: str,
        amount: int,
        idempotency: IdempotencyKey | None,
        encode: Callable[[TopupResult], bytes],
    ) -> TopupResult | Replay:
        """Add ``amount`` cents to the user's balance."""

        def txn_fn(txn: Any) -> TopupResult | Replay:
            txn.execute(_TOPUP_LOOKUP, (token_id, user_id, idempotency.key if idempotency else ""))
            revoked, request_hash, stored = txn.fetchone()
            if revoked:
                raise Unauthenticated("token revoked")
            if idempotency is not None and request_hash is not None:
                return _stored(idempotency, request_hash, stored)
            txn.execute(
                "SELECT balance, email FROM users WHERE user_id = %s FOR UPDATE", (user_id,)
            )
            row = txn.fetchone()
            if row is None:
                raise Unauthenticated()
            balance, email = int(row[0]), row[1]
            if balance + amount > MAX_BALANCE:
                raise BalanceLimit()
            txn.execute(
                "UPDATE users SET balance = balance + %s, updated_at = UTC_TIMESTAMP(6)"
                " WHERE user_id = %s",
                (amount, user_id),
            )
            transaction_id = _insert_transaction(
                txn, kind="topup", sender=None, receiver=(user_id, email), amount=amount
            )
            result = TopupResult(
                transaction_id=transaction_id, user_id=user_id, balance=balance + amount
            )
            if idempotency is not None:
                _remember(txn, user_id, idempotency, encode(result))
            return result

        return await self.db.run("topup", txn_fn)
