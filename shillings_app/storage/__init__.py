"""All SQL of the app server: one ``DataStore`` over an adbapi pool of pymysql connections."""

from __future__ import annotations

from shillings_app.storage.database import (
    Database,
    DatabaseUnavailable,
    DeadlineExceeded,
    RequestScope,
    check_deadline,
    request_scope,
    time_left,
)
from shillings_app.storage.history import HistoryStore
from shillings_app.storage.money import MoneyStore
from shillings_app.storage.tokens import TokenStore
from shillings_app.storage.users import UserStore


class DataStore(UserStore, MoneyStore, HistoryStore, TokenStore):
    """The storage API the handlers use."""

    def __init__(self, db: Database) -> None:
        self.db = db


__all__ = [
    "DataStore",
    "Database",
    "DatabaseUnavailable",
    "DeadlineExceeded",
    "RequestScope",
    "check_deadline",
    "request_scope",
    "time_left",
]
