"""Migration 0002: existing emails rewritten to their canonical form; lookalike accounts
that collide are listed, never merged; refused characters reported; safe to re-run."""

from __future__ import annotations

import bcrypt
import pytest_twisted

from shillings_app import migrations
from tests import protocol_requests as messages
from tests.app.helpers import PASSWORD, Session, login, serving, sql

LEGACY = [  # (email as the old code stored it, first_name, balance)
    ("jos\u00e9@example.com", "Nfc", 100),  # 1: canonical already
    ("jose\u0301@example.com", "Nfd", 200),  # 2: folds onto 1 -> collision
    ("\uff41da@example.com", "Wide", 300),  # 3: -> ada@example.com
    ("\ufb01sh@example.com", "Liga", 400),  # 4: -> fish@example.com
    ("x\u03c2@example.com", "Final", 500),  # 5: folds onto 6, which is canonical -> collision
    ("x\u03c3@example.com", "Sigma", 600),  # 6: canonical already, keeps it
    ("ev\x1bil@example.com", "Esc", 700),  # 7: refused character -> invalid_email
    ("name@example.com", "Ev\u202eil", 800),  # 8: name with a bidi override -> reported
    ("Upper@Example.COM", "Up", 900),  # 9: -> upper@example.com
    ("\uff41\uff44\uff41@example.com", "Wide3", 1000),  # 10: -> ada@..., taken by 3
]


def _legacy_database(dsn: str, monkeypatch) -> None:
    """The schema of 0001 only, with users as the old code could have stored them."""
    first = migrations.available()[:1]
    monkeypatch.setattr(migrations, "available", lambda: first)
    assert migrations.migrate(dsn) == ["0001_initial"]
    monkeypatch.undo()
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4)).decode()
    for email, first_name, balance in LEGACY:
        sql(
            dsn,
            "INSERT INTO users (first_name, last_name, email, phone, balance, created_at,"
            " updated_at) VALUES (%s, 'L', %s, '+15550000000', %s, UTC_TIMESTAMP(6),"
            " UTC_TIMESTAMP(6))",
            (first_name, email, balance),
        )
        sql(
            dsn,
            "INSERT INTO credentials (user_id, email, password, updated_at)"
            " SELECT user_id, email, %s, UTC_TIMESTAMP(6) FROM users WHERE email = %s",
            (hashed, email),
        )


def test_migration_canonicalises_reports_and_never_merges(database, monkeypatch):
    _legacy_database(database, monkeypatch)
    before = sql(database, "SELECT user_id, balance FROM users ORDER BY user_id")
    lines: list[str] = []
    assert migrations.migrate(database, report=lines.append) == [
        "0002_canonical_emails",
        "0003_idempotency_results",
        "0004_drop_idempotency_response",
        "0005_holds_refunds_events",
        "0006_webhooks",
        "0007_hold_capture_transaction",
        "0008_idempotency_refusals",
    ]

    emails = dict(sql(database, "SELECT user_id, email FROM users"))
    assert emails == {
        1: "jos\u00e9@example.com",
        2: "jose\u0301@example.com",  # unchanged: not merged into 1
        3: "ada@example.com",
        4: "fish@example.com",
        5: "x\u03c2@example.com",  # unchanged: not merged into 6
        6: "x\u03c3@example.com",
        7: "ev\x1bil@example.com",  # unchanged, reported
        8: "name@example.com",
        9: "upper@example.com",
        10: "\uff41\uff44\uff41@example.com",  # unchanged: not merged into 3
    }
    assert dict(sql(database, "SELECT user_id, email FROM credentials")) == emails
    assert sql(database, "SELECT user_id, balance FROM users ORDER BY user_id") == before
    review = sql(
        database,
        "SELECT user_id, field, problem, conflicts_with FROM identity_review ORDER BY user_id",
    )
    assert review == [
        (2, "email", "email_collision", 1),
        (5, "email", "email_collision", 6),
        (7, "email", "invalid_email", None),
        (8, "first_name", "forbidden_character", None),
        (10, "email", "email_collision", 3),
    ]
    text = "\n".join(lines)
    assert "user 2" in text and "belongs to user 1" in text and "not merged" in text
    assert "user 10" in text and "belongs to user 3" in text
    assert "3 email(s) rewritten" in text and "flush the Redis profile cache" in text
    # Re-running changes nothing.
    assert migrations.migrate(database, report=lines.append) == []
    assert dict(sql(database, "SELECT user_id, email FROM users")) == emails


@pytest_twisted.ensureDeferred
async def test_after_the_migration_lookalikes_reach_the_first_account(database, monkeypatch):
    _legacy_database(database, monkeypatch)
    migrations.migrate(database, report=lambda line: None)
    async with serving(database) as client:
        wide = await login(client, "\uff21DA@EXAMPLE.COM")
        assert wide.user.user_id == 3 and wide.user.email == "ada@example.com"
        session = Session(client, wide.user, wide)
        paid = await session.pay("X\u03a3@EXAMPLE.COM", 100)
        assert paid.status.code == 200
        assert sql(
            database,
            "SELECT receiver_id FROM transactions WHERE transaction_id = %s",
            (paid.pay.transaction_id,),
        ) == [(6,)]
        nfd = await login(client, "jose\u0301@example.com")
        assert nfd.user.user_id == 1  # the canonical owner; user 2 awaits an operator
        taken = await client.call(
            messages.signup(
                first_name="A",
                middle_name="",
                last_name="B",
                email="FISH@example.com",
                phone="+15550000000",
                password=PASSWORD,
            )
        )
        assert taken.status.reason == "email_taken"
