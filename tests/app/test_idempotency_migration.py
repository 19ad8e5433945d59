"""Migration 0003/0004: idempotency keys stored as serialized protobuf responses become
result columns, and every one of them still replays through the app server."""

from __future__ import annotations

import bcrypt
import pymysql
import pytest
import pytest_twisted

from shillings_app import migrations
from shillings_app.handlers.validation import idempotency_key
from shillings_app.migrations.steps import stored_result
from shillings_proto import pb
from tests.app.helpers import PASSWORD, Session, login, serving, sql

TX = [f"0b6b4bd6-2f1c-4b8e-9a55-6a6f3c1f0e2{n}" for n in range(4)]


def _legacy_pay(transaction_id: str, sender_id: int, receiver_id: int, balance: int) -> bytes:
    """A pay response as the old app server stored it, with the sender_id (2) and
    receiver_id (3) fields the protocol no longer has."""
    body = pb.PayResponse(transaction_id=transaction_id, sender_balance=balance)
    body.MergeFromString(bytes([0x10, sender_id, 0x18, receiver_id]))
    return pb.Response(status=pb.Status(code=200, message="OK"), pay=body).SerializeToString()


def _legacy_topup(transaction_id: str, balance: int, **extra: object) -> bytes:
    response = pb.Response(
        status=pb.Status(code=200, message="OK"),
        topup=pb.TopupResponse(transaction_id=transaction_id, balance=balance),
    )
    for name, value in extra.items():
        setattr(response, name, value)
    return response.SerializeToString()


def _database_at_0002(dsn: str, monkeypatch: pytest.MonkeyPatch) -> None:
    first = migrations.available()[:2]
    monkeypatch.setattr(migrations, "available", lambda: first)
    assert migrations.migrate(dsn) == ["0001_initial", "0002_canonical_emails"]
    monkeypatch.undo()
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4)).decode()
    for user_id, balance in ((1, 700), (2, 300)):
        sql(
            dsn,
            "INSERT INTO users (user_id, first_name, last_name, email, phone, balance,"
            " created_at, updated_at) VALUES (%s, 'A', 'B', %s, '+15550000000', %s,"
            " UTC_TIMESTAMP(6), UTC_TIMESTAMP(6))",
            (user_id, f"u{user_id}@example.com", balance),
        )
        sql(
            dsn,
            "INSERT INTO credentials (user_id, email, password, updated_at)"
            " VALUES (%s, %s, %s, UTC_TIMESTAMP(6))",
            (user_id, f"u{user_id}@example.com", hashed),
        )
    rows = [  # (transaction id, kind, sender, receiver, amount)
        (TX[0], "topup", None, 1, 1000),
        (TX[1], "payment", 1, 2, 300),
        (TX[2], "topup", None, 1, 100),
    ]
    for tx, kind, sender, receiver, amount in rows:
        sql(
            dsn,
            "INSERT INTO transactions (transaction_id, kind, sender_id, sender_email,"
            " receiver_id, receiver_email, amount, created_at)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, UTC_TIMESTAMP(6))",
            (
                tx,
                kind,
                sender,
                None if sender is None else f"u{sender}@example.com",
                receiver,
                f"u{receiver}@example.com",
                amount,
            ),
        )


def _store(dsn: str, user_id: int, key: str, command: str, parts: tuple, blob: bytes) -> None:
    idem = idempotency_key(key, command, *parts)
    assert idem is not None
    sql(
        dsn,
        "INSERT INTO idempotency_keys (user_id, idem_key, command, request_hash, response,"
        " created_at) VALUES (%s, %s, %s, %s, %s, UTC_TIMESTAMP(6))",
        (user_id, key, command, idem.request_hash, blob),
    )


def test_stored_results_are_read_from_every_shape_of_response() -> None:
    assert stored_result(_legacy_topup(TX[0], 5)) == (TX[0], 5, 200)
    assert stored_result(_legacy_pay(TX[1], 1, 2, 10)) == (TX[1], 10, 200)
    assert stored_result(_legacy_topup(TX[0], 2**40, request_id=7)) == (TX[0], 2**40, 200)
    assert stored_result(_legacy_topup("", 1)) is None
    assert stored_result(pb.Response(status=pb.Status(code=200)).SerializeToString()) is None
    assert stored_result(b"\xff\xff") is None


@pytest_twisted.ensureDeferred
async def test_stored_keys_become_columns_and_still_replay(database, monkeypatch):
    _database_at_0002(database, monkeypatch)
    _store(database, 1, "t-1", "TPU", (1000,), _legacy_topup(TX[0], 1000))
    _store(database, 1, "p-1", "PAY", ("u2@example.com", 300), _legacy_pay(TX[1], 1, 2, 700))
    _store(database, 1, "t-2", "TPU", (100,), _legacy_topup(TX[2], 800, request_id=9))
    lines: list[str] = []
    assert migrations.migrate(database, report=lines.append) == [
        "0003_idempotency_results",
        "0004_drop_idempotency_response",
        "0005_holds_refunds_events",
        "0006_webhooks",
        "0007_hold_capture_transaction",
        "0008_idempotency_refusals",
    ]
    assert lines == ["3 idempotency key(s) now store their result as columns"]
    assert sql(
        database,
        "SELECT idem_key, transaction_id, balance, status FROM idempotency_keys ORDER BY idem_key",
    ) == [("p-1", TX[1], 700, 200), ("t-1", TX[0], 1000, 200), ("t-2", TX[2], 800, 200)]
    columns = {row[0] for row in sql(database, "SHOW COLUMNS FROM idempotency_keys")}
    assert "response" not in columns

    async with serving(database) as client:
        token = await login(client, "u1@example.com")
        session = Session(client, token.user, token)
        paid = await session.pay("u2@example.com", 300, key="p-1")
        assert paid.status.code == 200
        assert (paid.pay.transaction_id, paid.pay.sender_balance) == (TX[1], 700)
        topped = await session.topup(100, key="t-2")
        assert (topped.topup.transaction_id, topped.topup.balance) == (TX[2], 800)
        first = await session.topup(1000, key="t-1")
        assert (first.topup.transaction_id, first.topup.balance) == (TX[0], 1000)
        reused = await session.topup(5, key="t-1")
        assert reused.status.reason == "idempotency_key_reused"
        # New keys store their result as columns too.
        fresh = await session.topup(50, key="t-3")
        assert fresh.status.code == 200 and fresh.topup.balance == 750
        again = await session.topup(50, key="t-3")
        assert again.topup == fresh.topup and again.status.code == 200
    assert sql(database, "SELECT COUNT(*) FROM transactions") == [(4,)]
    assert sql(database, "SELECT balance FROM users ORDER BY user_id") == [(750,), (300,)]


def test_a_response_naming_no_transaction_stops_the_migration(database, monkeypatch):
    _database_at_0002(database, monkeypatch)
    _store(database, 1, "t-1", "TPU", (1000,), _legacy_topup(TX[0], 1000))
    _store(database, 2, "bad", "TPU", (1,), b"\xff\xff")
    with pytest.raises(RuntimeError, match="'bad' of user 2"):
        migrations.migrate(database, report=lambda line: None)
    # Nothing converted, the blobs kept: the operator fixes the row and migrates again.
    assert sql(
        database, "SELECT idem_key, transaction_id FROM idempotency_keys ORDER BY idem_key"
    ) == [("bad", None), ("t-1", None)]
    sql(database, "DELETE FROM idempotency_keys WHERE idem_key = 'bad'")
    assert migrations.migrate(database, report=lambda line: None) == [
        "0003_idempotency_results",
        "0004_drop_idempotency_response",
        "0005_holds_refunds_events",
        "0006_webhooks",
        "0007_hold_capture_transaction",
        "0008_idempotency_refusals",
    ]
    assert sql(database, "SELECT transaction_id FROM idempotency_keys") == [(TX[0],)]
    with pytest.raises(pymysql.err.OperationalError):
        sql(database, "SELECT response FROM idempotency_keys")
