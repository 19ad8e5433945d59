"""Users and credentials: signup, login lookup, profile."""

from __future__ import annotations

from typing import Any

import pymysql

from shillings_app.errors import EmailTaken, Unauthenticated
from shillings_app.storage.database import ER_DUP_ENTRY, Database, error_code
from shillings_app.storage.records import USER_COLUMNS, UserRecord, user_from_row


class UserStore:
    db: Database

    async def email_exists(self, email: str) -> bool:
        def txn_fn(txn: Any) -> bool:
            txn.execute("SELECT 1 FROM users WHERE email = %s", (email,))
            return txn.fetchone() is not None

        return await self.db.run("email_exists", txn_fn)

    async def create_user(
        self,
        *,
        first_name: str,
        middle_name: str | None,
        last_name: str,
        email: str,
        phone: str,
        password_hash: str,
    ) -> UserRecord:
        """Insert the user and its credentials; ``EmailTaken`` if the email is registered."""

        def txn_fn(txn: Any) -> UserRecord:
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
            txn.execute(f"SELECT {USER_COLUMNS} FROM users u WHERE u.user_id = %s", (user_id,))
            return user_from_row(txn.fetchone())

        return await self.db.run("create_user", txn_fn)

    async def credentials_by_email(self, email: str) -> tuple[str, UserRecord] | None:
        """The bcrypt hash and the user for ``email``, or None."""

        def txn_fn(txn: Any) -> tuple[str, UserRecord] | None:
            txn.execute(
                f"SELECT {USER_COLUMNS}, c.password FROM credentials c"
                " JOIN users u ON u.user_id = c.user_id WHERE c.email = %s",
                (email,),
            )
            row = txn.fetchone()
            if row is None:
                return None
            return row[9], user_from_row(row)

        return await self.db.run("credentials_by_email", txn_fn)

    async def record_login(self, user_id: int) -> None:
        def txn_fn(txn: Any) -> None:
            txn.execute(
                "UPDATE credentials SET last_login = UTC_TIMESTAMP(6) WHERE user_id = %s",
                (user_id,),
            )

        await self.db.run("record_login", txn_fn)

    async def profile(self, user_id: int, token_id: str) -> UserRecord:
        """The user's profile; ``Unauthenticated`` if the user is gone or the token revoked."""

        def txn_fn(txn: Any) -> UserRecord:
            txn.execute(
                f"SELECT {USER_COLUMNS},"
                " EXISTS(SELECT 1 FROM revoked_tokens r WHERE r.jti = %s)"
                " FROM users u WHERE u.user_id = %s",
                (token_id, user_id),
            )
            row = txn.fetchone()
            if row is None or row[9]:
                raise Unauthenticated()
            return user_from_row(row)

        return await self.db.run("profile", txn_fn)
