"""Checks shared by every authenticated interaction."""

from __future__ import annotations

from typing import Any

from shillings_app.errors import Unauthenticated


def check_not_revoked(txn: Any, token_id: str) -> None:
    """Raise ``Unauthenticated`` when ``token_id`` has been revoked."""
    txn.execute("SELECT 1 FROM revoked_tokens WHERE jti = %s", (token_id,))
    if txn.fetchone() is not None:
        raise Unauthenticated("token revoked")
