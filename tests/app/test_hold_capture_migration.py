"""Migration 0007: a captured hold names its capture's ledger row; holds captured before it
are filled from the ledger, and only a captured hold may name one."""

from __future__ import annotations

import pymysql
import pytest

from shillings_app import migrations
from tests.app.helpers import sql

HOLDS = ["11111111-1111-4111-8111-11111111111" + str(n) for n in range(3)]
CAPTURE = "22222222-2222-4222-8222-222222222222"


def test_captured_holds_are_filled_from_the_ledger(database, monkeypatch):
    first = [m for m in migrations.available() if m.version < "0007"]
    monkeypatch.setattr(migrations, "available", lambda: first)
    migrations.migrate(database)
    monkeypatch.undo()
    for user_id in (1, 2):
        sql(
            database,
            "INSERT INTO users (user_id, first_name, last_name, email, phone, balance,"
            " created_at, updated_at) VALUES (%s, 'A', 'B', %s, '+15550000000', 500,"
            " UTC_TIMESTAMP(6), UTC_TIMESTAMP(6))",
            (user_id, f"u{user_id}@example.com"),
        )
    states = (("captured", 300), ("voided", 0), ("held", 0))
    for hold_id, (state, captured) in zip(HOLDS, states, strict=True):
        sql(
            database,
            "INSERT INTO holds (hold_id, payer_id, payer_email, receiver_id, receiver_email,"
            " amount, captured_amount, state, expires_at, created_at, updated_at) VALUES"
            " (%s, 1, 'u1@example.com', 2, 'u2@example.com', 400, %s, %s,"
            " UTC_TIMESTAMP(6) + INTERVAL 1 DAY, UTC_TIMESTAMP(6), UTC_TIMESTAMP(6))",
            (hold_id, captured, state),
        )
    sql(
        database,
        "INSERT INTO transactions (transaction_id, kind, sender_id, sender_email, receiver_id,"
        " receiver_email, amount, created_at, hold_id) VALUES (%s, 'capture', 1,"
        " 'u1@example.com', 2, 'u2@example.com', 300, UTC_TIMESTAMP(6), %s)",
        (CAPTURE, HOLDS[0]),
    )

    assert migrations.migrate(database) == [
        m.version for m in migrations.available() if m.version >= "0007"
    ]
    rows = sql(database, "SELECT hold_id, capture_transaction_id FROM holds ORDER BY id")
    assert rows == [(HOLDS[0], CAPTURE), (HOLDS[1], None), (HOLDS[2], None)]
    with pytest.raises(pymysql.err.OperationalError, match="holds_capture_named"):
        sql(
            database,
            "UPDATE holds SET capture_transaction_id = %s WHERE hold_id = %s",
            (CAPTURE, HOLDS[2]),
        )
