"""Business logic per concern; each handler takes the ``Context`` and one Request."""

from __future__ import annotations

from dataclasses import dataclass

from twisted.internet.interfaces import IReactorTime

from shillings_app.config import AppConfig
from shillings_app.passwords import PasswordHasher
from shillings_app.storage import DataStore
from shillings_app.tokens import TokenIssuer


@dataclass
class Context:
    """What handlers need: configuration, storage, password hashing, tokens, a clock."""

    config: AppConfig
    store: DataStore
    passwords: PasswordHasher
    tokens: TokenIssuer
    clock: IReactorTime
