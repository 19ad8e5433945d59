"""The one check of every authenticated request: the user exists and the token is not
revoked. Each authenticated transaction folds ``REVOKED`` into its first statement (so a
payment batch keeps one lookup) and hands the answer to ``authenticated``."""

from __future__ import annotations

from typing import Any

from shillings_app.errors import Unauthenticated

REVOKED = "EXISTS(SELECT 1 FROM revoked_tokens WHERE jti = %s)"
"""A SELECT expression, true when the token (its jti the parameter) has been revoked."""


def authenticated(user_found: object, revoked: object) -> None:
    """Raise ``Unauthenticated`` for a revoked token or a user who does not exist."""
    if revoked:
        raise Unauthenticated("token revoked")
    if not user_found:
        raise Unauthenticated()


def authenticate(txn: Any, user_id: int, token_id: str) -> None:
    """Check the caller in one statement, for transactions with nothing to fold it into."""
    txn.execute(
        f"SELECT EXISTS(SELECT 1 FROM users WHERE user_id = %s), {REVOKED}", (user_id, token_id)
    )
    user_found, revoked = txn.fetchone()
    authenticated(user_found, revoked)
