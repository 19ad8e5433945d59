"""All SQL of the app server: named transaction functions (``*_txn``) and the statements
they share, run by ``Database.run`` over an adbapi pool of pymysql connections."""

from __future__ import annotations

from shillings_app.storage.database import (
    Database,
    DatabaseUnavailable,
    DeadlineExceeded,
    KeptConflicting,
    RequestScope,
)
from shillings_app.storage.housekeeping import purge_expired_txn


class DataStore:
    """The database the handlers run their transactions on, and its housekeeping."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def purge_expired(self) -> tuple[int, int]:
        """Delete a batch of expired revocations and old idempotency keys; the counts."""
        return await self.db.run("purge_expired", purge_expired_txn)


__all__ = [
    "DataStore",
    "Database",
    "DatabaseUnavailable",
    "DeadlineExceeded",
    "KeptConflicting",
    "RequestScope",
]
