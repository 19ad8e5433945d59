"""Users and credentials: the transaction functions of signup, login and profile."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pymysql

from shillings_app.errors import EmailTaken
from shillings_app.storage.auth import REVOKED, authenticated
from shillings_app.storage.database import ER_DUP_ENTRY, error_code
from shillings_app.storage.money import ACTIVE_HELD, NEXT_HOLD_EXPIRY
from shillings_app.storage.records import USER_COLUMNS, UserRecord, user_from_row

_COLUMNS = (
    f"{USER_COLUMNS}, {ACTIVE_HELD.format(user='u.user_id')},"
    f" {NEXT_HOLD_EXPIRY.format(user='u.user_id')}"
)
"""A user with what their holds reserve and when that next shrinks; ``_user`` reads it."""


def _user(row: tuple[Any, ...]) -> UserRecord:
    return replace(user_from_row(row), held=int(row[9]), next_hold_expiry=row[10])


def email_exists_txn(txn: Any, email: str) -> bool:
    txn.execute("SELECT 1 FROM users WHERE email = %s", (email,))
    return txn.fetchone() is not None


def create_user_txn(
    txn: Any,
    first_name: str,
    middle_name: str | None,
    last_name: str,
    email: str,
    phone: str,
    password_hash: str,
) -> UserRecord:
    """Insert the user and its credentials; ``EmailTaken`` if the email is registered."""
    try:
        txn.execute(
            "INSERT INTO users (first_name, middle_name, last_name, email, phone,"
            " balance, created_at, updated_at)"
            " VALUES (%s, %s, %s, %s, %s, 0, UTC_TIMESTAMP(6), UTC_TIMESTAMP(6))",
            (first_name, middle_name, last_name, email, phone),
        )
    except pymysql.err.IntegrityError as e:
        if error_code(e) == ER_DUP_ENTRY:
            raise EmailTaken() from None
        raise
    user_id = txn.lastrowid
    txn.execute(
        "INSERT INTO credentials (user_id, email, password, updated_at)"
        " VALUES (%s, %s, %s, UTC_TIMESTAMP(6))",
        (user_id, email, password_hash),
    )
    txn.execute(f"SELECT {_COLUMNS} FROM users u WHERE u.user_id = %s", (user_id,))
    return _user(txn.fetchone())


def credentials_txn(txn: Any, email: str) -> tuple[str, UserRecord] | None:
    """The bcrypt hash and the user for ``email``, or None."""
    txn.execute(
        f"SELECT {_COLUMNS}, c.password FROM credentials c"
        " JOIN users u ON u.user_id = c.user_id WHERE c.email = %s",
        (email,),
    )
    row = txn.fetchone()
    if row is None:
        return None
    return row[11], _user(row)


def record_login_txn(txn: Any, user_id: int) -> None:
    txn.execute(
        "UPDATE credentials SET last_login = UTC_TIMESTAMP(6) WHERE user_id = %s", (user_id,)
    )


def profile_txn(txn: Any, user_id: int, token_id: str) -> UserRecord:
    """The caller's profile with their holds' ``held`` (the token check folded into the same
    statement)."""
    txn.execute(
        f"SELECT {_COLUMNS}, {REVOKED} FROM users u WHERE u.user_id = %s",
        (token_id, user_id),
    )
    row = txn.fetchone()
    authenticated(row is not None, row[11] if row is not None else False)
    return _user(row)
