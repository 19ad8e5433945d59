"""Schema migrations: applied once, idempotent, database created, constraints enforced."""

from __future__ import annotations

import pymysql
import pytest

from shillings_app import migrations
from shillings_app.config import parse_dsn
from tests.app.helpers import sql


def test_migrate_applies_everything_once(database):
    versions = [m.version for m in migrations.available()]
    assert versions and versions[0] == "0001_initial"
    assert migrations.migrate(database) == versions
    assert migrations.migrate(database) == []
    recorded = sql(database, "SELECT version FROM schema_migrations ORDER BY version")
    assert [version for (version,) in recorded] == versions
    tables = {row[0] for row in sql(database, "SHOW TABLES")}
    assert {
        "users",
        "credentials",
        "transactions",
        "idempotency_keys",
        "revoked_tokens",
        "schema_migrations",
    } <= tables


def test_migrate_creates_a_missing_database(mariadb):
    dsn = mariadb.dsn("created_by_migrate")
    try:
        assert migrations.migrate(dsn) == [m.version for m in migrations.available()]
        assert sql(dsn, "SELECT COUNT(*) FROM users") == [(0,)]
    finally:
        sql(mariadb.dsn("mysql"), "DROP DATABASE IF EXISTS created_by_migrate")


def _insert_user(dsn: str, email: str, balance: int) -> None:
    sql(
        dsn,
        "INSERT INTO users (first_name, last_name, email, phone, balance, created_at, updated_at)"
        " VALUES ('a', 'b', %s, '+15550000000', %s, UTC_TIMESTAMP(6), UTC_TIMESTAMP(6))",
        (email, balance),
    )


@pytest.mark.parametrize("balance", [-1, 10**15 + 1])
def test_balance_check_constraint(database, balance):
    migrations.migrate(database)
    with pytest.raises(pymysql.err.OperationalError) as caught:
        _insert_user(database, "x@example.com", balance)
    assert caught.value.args[0] == 4025  # ER_CONSTRAINT_FAILED


def test_transaction_amount_and_kind_constraints(database):
    migrations.migrate(database)
    _insert_user(database, "a@example.com", 0)
    _insert_user(database, "b@example.com", 0)
    bad_rows = [
        ("payment", 1, 2, 0),  # amount must be > 0
        ("payment", 1, 2, 100_000_001),  # over the per-operation maximum
        ("payment", 1, 1, 10),  # self payment
        ("payment", None, 1, 10),  # payment without a sender
        ("topup", 2, 1, 10),  # top-up with a sender
    ]
    for n, (kind, sender, receiver, amount) in enumerate(bad_rows):
        with pytest.raises(pymysql.err.OperationalError):
            sql(
                database,
                "INSERT INTO transactions (transaction_id, kind, sender_id, receiver_id,"
                " receiver_email, amount, created_at)"
                " VALUES (%s, %s, %s, %s, 'b@example.com', %s, UTC_TIMESTAMP(6))",
                (f"t{n}", kind, sender, receiver, amount),
            )


def test_statements_split_on_semicolons():
    statements = migrations.available()[0].statements()
    assert len(statements) == 5
    assert all(s.startswith("CREATE TABLE") for s in statements)


def test_dsn_parsing():
    assert parse_dsn("mysql://app:p%40ss@db.internal:3307/shillings") == {
        "host": "db.internal",
        "port": 3307,
        "user": "app",
        "password": "p@ss",
        "database": "shillings",
        "charset": "utf8mb4",
    }
    kwargs = parse_dsn("mysql://root@localhost/shl?unix_socket=/tmp/m.sock")
    assert kwargs["unix_socket"] == "/tmp/m.sock" and kwargs["database"] == "shl"
    for bad in ("postgres://x@y/z", "mysql://root@localhost/", "mysql://root@h:notaport/db"):
        with pytest.raises(ValueError):
            parse_dsn(bad)
