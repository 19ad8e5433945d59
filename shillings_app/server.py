"""The app server (``AppServer``): listening, start and stop with draining, housekeeping;
its connections' protocol and factory are in connections.py."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from twisted.application.internet import TimerService
from twisted.internet import defer
from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress
from twisted.internet.endpoints import serverFromString
from twisted.internet.interfaces import IListeningPort
from twisted.internet.task import deferLater
from twisted.logger import Logger

from shillings_app.config import AppConfig
from shillings_app.connections import AppServerFactory
from shillings_app.handlers import Context
from shillings_app.metrics import AppMetrics
from shillings_app.passwords import PasswordHasher
from shillings_app.storage import Database, DataStore
from shillings_app.storage.housekeeping import PURGE_BATCH
from shillings_app.tls import tls_wrapped
from shillings_app.tokens import TokenIssuer
from shillings_proto.metrics import MetricsListener

HOUSEKEEPING_INTERVAL_S = 600.0


def _fixed_port(description: str, port: int) -> str:
    """``description`` with a port of 0 replaced by ``port`` (to listen again on it)."""
    return re.sub(r"^(tcp6?:)(port=)?0(?=:|$)", rf"\g<1>\g<2>{port}", description)


def _client_address(host: Any) -> str:
    if isinstance(host, (IPv4Address, IPv6Address)):
        return f"tcp:{host.host.replace(':', chr(92) + ':')}:{host.port}"
    if isinstance(host, UNIXAddress):
        name = host.name.decode() if isinstance(host.name, bytes) else host.name
        return f"unix:{name}"
    raise ValueError(f"unsupported listening address {host!r}")


class AppServer:
    """An app server listening per ``config``: ``await start()``, ``await stop()``; it can
    be started again after a stop, on the same address."""

    log = Logger()

    def __init__(self, config: AppConfig, reactor: Any = None) -> None:
        self.config = config
        self.dsn = config.mysql_dsn
        if reactor is None:
            from twisted.internet import reactor
        self._reactor = reactor
        self._listen = config.listen
        if self._listen.startswith("unix:") and "lockfile=" not in self._listen:
            # Removes a stale socket left by a killed process, refuses a live one.
            self._listen += ":lockfile=1"
        self._port: IListeningPort | None = None
        self._factory: AppServerFactory | None = None
        self._db: Database | None = None
        self.housekeeping = TimerService(
            HOUSEKEEPING_INTERVAL_S, lambda: defer.ensureDeferred(self.purge())
        )
        """Purges at start, then every ``HOUSEKEEPING_INTERVAL_S``; stopping waits for it."""
        self.housekeeping.clock = self._reactor
        self.metrics = AppMetrics()
        self.metrics.watch(self)
        self._metrics = (
            MetricsListener(self._reactor, config.metrics_listen, self.metrics.registry)
            if config.metrics_listen
            else None
        )
        self.db_retries: Counter[str] = Counter()
        """Database retries by cause, over every start of this server."""
        self.address = ""
        """Client endpoint string of the listening address, e.g. ``tcp:127.0.0.1:7070``."""
        self.port = 0
        """The TCP port listened on (0 for a unix socket)."""

    @property
    def db(self) -> Database | None:
        return self._db

    @property
    def factory(self) -> AppServerFactory | None:
        return self._factory

    @property
    def metrics_port(self) -> int:
        """The TCP port of the metrics listener (``SHILLINGS_METRICS_LISTEN``; 0: none)."""
        return 0 if self._metrics is None else self._metrics.tcp_port

    async def start(self) -> None:
        if self._port is not None:
            return
        db = Database(
            self.dsn,
            pool_min=self.config.db_pool_min,
            pool_max=self.config.db_pool_max,
            clock=self._reactor,
            retries=self.db_retries,
            sync_wait=self.config.db_sync_wait,
        )
        ctx = Context(
            config=self.config,
            store=DataStore(db),
            passwords=PasswordHasher(
                self.config.bcrypt_cost,
                workers=self.config.password_workers,
                queue=self.config.password_queue,
            ),
            tokens=TokenIssuer(self.config.jwt_secret, self.config.token_ttl),
            clock=self._reactor,
        )
        factory = AppServerFactory(self.config, ctx, self._reactor, self.metrics)
        metrics = self._metrics
        try:
            await ctx.passwords.prepare()
            if metrics is not None:
                await metrics.start()
            endpoint = serverFromString(self._reactor, self._listen)
            port = await endpoint.listen(tls_wrapped(self.config.tls, factory))
        except BaseException:
            if metrics is not None:
                await metrics.stop()
            db.close()
            raise
        self._db, self._factory, self._port = db, factory, port
        host = port.getHost()
        self.address = _client_address(host)
        self.port = getattr(host, "port", 0)
        if self.port:
            self._listen = _fixed_port(self._listen, self.port)
        self.housekeeping.startService()
        self.log.info("app server listening on {address}", address=self.address)

    async def stop(self, drain_timeout: float = 0.0) -> None:
        """Stop listening and tell every client to send nothing more here (GoAway: the
        requests it sent after the last one read were not processed and can go elsewhere);
        let the requests in progress finish and be answered for up to ``drain_timeout`` s;
        then close every connection and the database pool."""
        if self._port is None:
            return
        port, factory, db = self._port, self._factory, self._db
        self._port = None
        await self.housekeeping.stopService()
        await defer.maybeDeferred(port.stopListening)
        assert factory is not None and db is not None
        for conn in list(factory.connections):
            conn.go_away()
        if drain_timeout > 0:
            drained = await factory.wait_drained(drain_timeout)
            self.log.info(
                "app server drained" if drained else "app server not drained in {seconds}s",
                seconds=drain_timeout,
            )
        for conn in list(factory.connections):
            conn.transport.loseConnection()
        # Handlers still running hold pool threads; let them end before closing the pool.
        if not await factory.wait_drained(10.0):
            self.log.warn("{n} requests still running at stop", n=factory.in_flight)
        await factory.wait_closed(1.0)
        for conn in list(factory.connections):
            conn.transport.abortConnection()
        # abortConnection completes on the next reactor iteration.
        await deferLater(self._reactor, 0, lambda: None)
        db.close()
        if self._metrics is not None:
            await self._metrics.stop()
        self.log.info("app server stopped")

    async def purge(self) -> None:
        """Delete expired revocations and old idempotency keys, batch after batch."""
        assert self._factory is not None
        ctx = self._factory.ctx
        tokens = keys = 0
        try:
            while True:
                batch_tokens, batch_keys = await ctx.store.purge_expired()
                tokens += batch_tokens
                keys += batch_keys
                if max(batch_tokens, batch_keys) < PURGE_BATCH:
                    break
                await deferLater(self._reactor, 0.05, lambda: None)
        except Exception:
            self.log.failure("housekeeping failed")
        if tokens or keys:
            self.log.info(
                "purged {tokens} expired revocations, {keys} old idempotency keys",
                tokens=tokens,
                keys=keys,
            )
