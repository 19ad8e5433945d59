"""One module per operation: its rules, its named transaction functions and the one place
its protobuf response is built. Each exposes ``handle(ctx, request, scope)``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from twisted.internet.interfaces import IReactorTime

from shillings_app.batching import Batcher, BatchTxn
from shillings_app.config import AppConfig
from shillings_app.passwords import PasswordHasher
from shillings_app.storage import Database, DataStore
from shillings_app.tokens import TokenIssuer
from shillings_app.webhooks.resolver import Resolver
from shillings_proto import pb


@dataclass
class Context:
    """What handlers need: configuration, storage, password hashing, tokens, a clock, a
    host name resolver."""

    config: AppConfig
    store: DataStore
    passwords: PasswordHasher
    tokens: TokenIssuer
    clock: IReactorTime
    batchers: dict[str, Batcher[Any]] = field(default_factory=dict)
    """The group-commit batcher of each operation that has one, by name."""
    resolver: Resolver = field(init=False)
    """Webhook host names are resolved in its own threads, never the reactor's."""

    def __post_init__(self) -> None:
        self.resolver = Resolver(
            self.clock,
            threads=self.config.webhook_resolver_threads,
            queue=self.config.webhook_resolver_queue,
        )

    @property
    def db(self) -> Database:
        """The database every transaction function runs on (``Database.run``)."""
        return self.store.db

    def batcher(self, name: str, txn: BatchTxn[Any]) -> Batcher[Any]:
        """The batcher of operation ``name`` (running ``txn``), made on first use."""
        batcher = self.batchers.get(name)
        if batcher is None:
            batcher = self.batchers[name] = Batcher(
                self.db,
                name,
                txn,
                in_flight=self.config.batch_in_flight,
                max_size=self.config.batch_max,
            )
        return batcher


_STATUS_TEXT = {200: "OK", 201: "Created"}


def status(code: int = 200, *, replayed: bool = False) -> pb.Status:
    """The status of a successful answer (``replayed``: read from an idempotency key)."""
    return pb.Status(code=code, message=_STATUS_TEXT.get(code, ""), replayed=replayed)
