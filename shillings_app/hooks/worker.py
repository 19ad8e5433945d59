"""One delivery worker: a loop that fans new events out (every ``poll`` s, at once while
they come in full batches), claims due deliveries (as many as it has free sending slots,
once a quarter of them are free) and sends each in the background, recording its attempt. Several
workers share the tables safely: every step locks with ``FOR UPDATE SKIP LOCKED``. The loop
starts once the schema has every migration this code knows (the app server applies them)."""

from __future__ import annotations

import random
import time
from datetime import datetime, timedelta
from typing import Any

import pymysql
from pymysql.constants.ER import BAD_DB_ERROR as ER_BAD_DB_ERROR
from pymysql.constants.ER import NO_SUCH_TABLE as ER_NO_SUCH_TABLE
from twisted.internet import defer
from twisted.internet.interfaces import IDelayedCall
from twisted.logger import Logger

from shillings_app.hooks.config import HooksConfig
from shillings_app.hooks.metrics import HooksMetrics, result_of
from shillings_app.hooks.sender import SECRET, Sender
from shillings_app.migrations import available
from shillings_app.storage.database import Database, DatabaseUnavailable, error_code
from shillings_app.storage.deliveries import (
    Claimed,
    Outcome,
    backlog_txn,
    claim_txn,
    fanout_txn,
    record_txn,
)
from shillings_app.storage.money import now
from shillings_app.webhooks.secrets import SealError, unseal
from shillings_proto.metrics import MetricsListener

log = Logger(namespace="shillings.hooks")

BACKLOG_EVERY_S = 5.0
"""How often the backlog gauge is counted."""
ERROR_PAUSE_S = 1.0
"""Pause after a failed step (e.g. the database is down) before the next."""
SCHEMA_PAUSE_S = 0.5
"""Pause between looks at the schema while it lacks a migration the worker needs."""


def applied_txn(txn: Any) -> set[str]:
    """The versions in ``schema_migrations``."""
    txn.execute("SELECT version FROM schema_migrations")
    return {str(row[0]) for row in txn.fetchall()}


def retry_delay(schedule: tuple[float, ...], attempt: int, jitter: int) -> float | None:
    """Seconds before the attempt after attempt number ``attempt`` (1-based), stretched by
    a random 0 to ``jitter`` %; None once the schedule is exhausted."""
    if attempt > len(schedule):
        return None
    return schedule[attempt - 1] * (1 + random.uniform(0, jitter / 100))


class HooksWorker:
    """Runs between ``start()`` and ``stop()``; ``metrics`` counts what it does."""

    def __init__(self, config: HooksConfig, reactor: Any) -> None:
        self.config = config
        self._reactor = reactor
        self.metrics = HooksMetrics()
        self._listener = (
            MetricsListener(reactor, config.metrics_listen, self.metrics.registry)
            if config.metrics_listen
            else None
        )
        self._db: Database | None = None
        self._sender: Sender | None = None
        self._running = False
        self._loop: defer.Deferred[None] | None = None
        self._wake: defer.Deferred[None] | None = None
        self._sends: set[defer.Deferred[None]] = set()
        self._backlog_at = 0.0
        self._fanout_at = 0.0
        self._fanout_full = False
        """The last fan-out took a full batch: more events wait."""
        self._claim_at_least = max(1, config.concurrency // 4)
        """Free sending slots worth a claim while others are busy: claims in batches, not
        one transaction per finished send."""

    @property
    def metrics_port(self) -> int:
        return 0 if self._listener is None else self._listener.tcp_port

    async def start(self) -> None:
        self._db = Database(
            self.config.mysql_dsn,
            pool_min=1,
            pool_max=4,
            clock=self._reactor,
            sync_wait=self.config.db_sync_wait,
        )
        self._sender = Sender(
            self._reactor,
            self.config.allow,
            self.config.timeout,
            self.config.concurrency,
            self.config.resolver_threads,
        )
        if self._listener is not None:
            await self._listener.start()
        self._running = True
        self._loop = defer.ensureDeferred(self._run())
        log.info(
            "delivery worker started (allow {allow}, timeout {timeout} s, lease {lease} s)",
            allow=str(self.config.allow),
            timeout=self.config.timeout,
            lease=self.config.lease,
        )

    async def stop(self) -> None:
        """Stop claiming; let the sends in progress finish (each is bounded by the timeout)
        and be recorded; then close the connections and the pool."""
        if not self._running:
            return
        self._running = False
        self._poke()
        assert self._loop is not None and self._db is not None and self._sender is not None
        await self._loop
        await defer.DeferredList(list(self._sends))
        await self._sender.close()
        self._db.close()
        if self._listener is not None:
            await self._listener.stop()
        log.info("delivery worker stopped")

    def _poke(self) -> None:
        wake, self._wake = self._wake, None
        if wake is not None:
            wake.callback(None)

    async def _pause(self, seconds: float) -> None:
        """Wait ``seconds``, or less when a send ends or the worker stops."""
        wake: defer.Deferred[None] = defer.Deferred()
        self._wake = wake
        timer: IDelayedCall = self._reactor.callLater(seconds, self._poke)
        await wake
        if timer.active():
            timer.cancel()

    async def _schema_missing(self) -> str:
        """Why the schema is not yet what this code needs ('' when it is): no database
        server, no database or no ``schema_migrations`` table yet, migrations not applied
        yet. Other errors (e.g. access denied) are raised."""
        assert self._db is not None
        try:
            applied = await self._db.run("hooks_schema", applied_txn)
        except DatabaseUnavailable as e:
            return f"no database connection ({e})"
        except pymysql.err.MySQLError as e:
            if error_code(e) in (ER_BAD_DB_ERROR, ER_NO_SUCH_TABLE):
                return f"no schema yet ({e})"
            raise
        missing = [m.version for m in available() if m.version not in applied]
        return f"migrations not applied yet: {', '.join(missing)}" if missing else ""

    async def _wait_for_schema(self) -> None:
        """Until the schema has every migration this code knows: at a fresh start the
        workers start beside the app server that migrates. An info line whenever the reason
        to wait changes, an error only for another failure."""
        said = ""
        while self._running:
            try:
                why = await self._schema_missing()
            except Exception as e:
                self.metrics.errors.inc()
                log.error("reading the schema's version failed: {error}", error=e)
                await self._pause(ERROR_PAUSE_S)
                continue
            if not why:
                if said:
                    log.info("schema ready: delivering")
                return
            if why != said:
                log.info("waiting for the schema: {why}", why=why)
                said = why
            await self._pause(SCHEMA_PAUSE_S)

    async def _run(self) -> None:
        await self._wait_for_schema()
        while self._running:
            try:
                busy = await self._step()
            except Exception as e:
                self.metrics.errors.inc()
                log.error(
                    "delivery worker step failed: {error}; again in {s} s", error=e, s=ERROR_PAUSE_S
                )
                busy = False
                await self._pause(ERROR_PAUSE_S)
            if not busy and self._running:
                await self._pause(self.config.poll)

    async def _step(self) -> bool:
        """Fan out (when due), claim (when enough sending slots are free), start sending;
        True if there may be more to do at once."""
        db, batch = self._db, self.config.batch
        assert db is not None
        more = False
        if self._fanout_full or time.monotonic() - self._fanout_at >= self.config.poll:
            self._fanout_at = time.monotonic()
            fanned = await db.run("hooks_fanout", fanout_txn, batch, now())
            self.metrics.fanned_out.inc(fanned)
            self._fanout_full = more = fanned == batch
        if time.monotonic() - self._backlog_at > BACKLOG_EVERY_S:
            self._backlog_at = time.monotonic()
            events, pending = await db.run("hooks_backlog", backlog_txn)
            self.metrics.backlog.labels("undispatched_events").set(events)
            self.metrics.backlog.labels("pending_deliveries").set(pending)
        free = min(batch, self.config.concurrency - len(self._sends))
        if not self._running or free < (self._claim_at_least if self._sends else 1):
            return more
        at = now()
        lease = at + timedelta(seconds=self.config.lease)
        claimed = await db.run("hooks_claim", claim_txn, free, at, lease)
        for delivery in claimed:
            self._start_send(delivery)
        return more or len(claimed) == free

    def _start_send(self, claimed: Claimed) -> None:
        sending = defer.ensureDeferred(self._deliver(claimed))
        self._sends.add(sending)
        self.metrics.in_flight.set(len(self._sends))

        def done(_: object) -> None:
            self._sends.discard(sending)
            self.metrics.in_flight.set(len(self._sends))
            if self.config.concurrency - len(self._sends) == self._claim_at_least:
                self._poke()

        sending.addBoth(done)

    async def _deliver(self, claimed: Claimed) -> None:
        """Send one delivery and record the attempt (a failure to record leaves the lease
        to expire: the delivery is sent again, with the same webhook-id)."""
        assert self._sender is not None and self._db is not None
        at = now()
        try:
            secret = unseal(claimed.secret_sealed, self.config.webhook_key, claimed.webhook_id)
        except SealError as e:
            outcome = Outcome(0, f"{SECRET} {e}", 0)
        else:
            outcome = await self._sender.send(claimed, secret)
        result = result_of(outcome)
        self.metrics.attempts.labels(result).inc()
        attempt = claimed.attempts + 1
        retry_at = None
        if not outcome.succeeded:
            delay = retry_delay(self.config.schedule, attempt, self.config.jitter)
            retry_at = None if delay is None else at + timedelta(seconds=delay)
        disable_before = at - timedelta(seconds=self.config.span)
        try:
            recorded = await self._db.run(
                "hooks_record", record_txn, claimed, outcome, at, retry_at, disable_before
            )
        except Exception as e:
            self.metrics.errors.inc()
            log.error(
                "delivery {event} to webhook {webhook}: cannot record attempt {n}: {error}",
                event=claimed.event_id,
                webhook=claimed.webhook_id,
                n=attempt,
                error=e,
            )
            return
        self._observe(claimed, outcome, result, recorded.state, retry_at)
        if recorded.disabled:
            self.metrics.disabled.inc()
            log.warn(
                "webhook {webhook} disabled: failing for {span:.0f} s without a success",
                webhook=claimed.webhook_id,
                span=self.config.span,
            )

    def _observe(
        self,
        claimed: Claimed,
        outcome: Outcome,
        result: str,
        state: str,
        retry_at: datetime | None,
    ) -> None:
        if not state:
            self.metrics.lost_leases.inc()
            log.warn(
                "delivery {event} to webhook {webhook}: lease passed to another worker;"
                " attempt not recorded",
                event=claimed.event_id,
                webhook=claimed.webhook_id,
            )
            return
        if state == "succeeded":
            self.metrics.deliveries.labels("succeeded").inc()
            delay = (now() - claimed.event_created_at).total_seconds()
            self.metrics.latency.observe(max(delay, 0.0))
            return
        if state == "failed":
            self.metrics.deliveries.labels("failed").inc()
        emit = log.error if result in ("refused", "secret") or state == "failed" else log.warn
        emit(
            "delivery {event} to webhook {webhook} attempt {n} {result}: {error}; {next}",
            event=claimed.event_id,
            webhook=claimed.webhook_id,
            n=claimed.attempts + 1,
            result=result,
            error=outcome.error,
            next="failed for good" if retry_at is None else f"retry at {retry_at:%H:%M:%S}",
        )
