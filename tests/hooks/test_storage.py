"""The delivery transactions on a real MariaDB, two connections racing as two workers would,
and the workers' settings."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pymysql
import pytest
import pytest_twisted

from shillings_app.config import parse_dsn
from shillings_app.hooks.config import HooksConfig, parse_schedule
from shillings_app.hooks.worker import HooksWorker, retry_delay
from shillings_app.storage.deliveries import Outcome, claim_txn, fanout_txn, record_txn
from shillings_app.storage.events import NewEvent, emit
from shillings_proto.envconfig import ConfigError
from tests.app.helpers import sql
from tests.hooks.conftest import add_webhook

T0 = datetime(2026, 11, 30, 12, 0, 0)


@pytest.fixture
def migrated(database: str) -> Iterator[str]:
    from shillings_app.migrations import migrate

    migrate(database)
    for n in (1, 2):
        sql(
            database,
            "INSERT INTO users (user_id, first_name, last_name, email, phone, balance,"
            " created_at, updated_at) VALUES (%s, 'A', 'B', %s, '+1555', 0, %s, %s)",
            (n, f"u{n}@example.com", T0, T0),
        )
    yield database


@pytest.fixture
def connect(migrated: str) -> Iterator[Any]:
    """Connections to the test database (as a worker's), closed after the test."""
    opened: list[pymysql.connections.Connection] = []

    def _connect() -> pymysql.connections.Connection:
        opened.append(pymysql.connect(**parse_dsn(migrated)))
        return opened[-1]

    yield _connect
    for conn in opened:
        conn.close()


def test_fanout_one_delivery_per_matching_enabled_endpoint(migrated: str, connect: Any) -> None:
    every, _ = add_webhook(migrated, 1, "http://a.example/")
    received, _ = add_webhook(migrated, 1, "http://b.example/", "payment.received")
    off, _ = add_webhook(migrated, 1, "http://c.example/")
    add_webhook(migrated, 2, "http://d.example/")
    sql(migrated, "UPDATE webhooks SET state = 'disabled' WHERE webhook_id = %s", (off,))
    conn = connect()
    with conn.cursor() as txn:
        emit(
            txn,
            [
                NewEvent(1, "payment.sent", {}),
                NewEvent(1, "payment.received", {}),
                NewEvent(2, "topup.succeeded", {}),
            ],
            T0,
        )
        conn.commit()
        for taken in (2, 1, 0):  # oldest first, at most the limit
            assert fanout_txn(txn, 2, T0) == taken
            conn.commit()
    rows = sql(
        migrated,
        "SELECT w.webhook_id, e.type FROM deliveries d JOIN webhooks w ON w.id = d.webhook_id"
        " JOIN events e ON e.id = d.event_id WHERE w.user_id = 1 ORDER BY d.id",
    )
    assert sorted(rows) == sorted(
        [(every, "payment.sent"), (every, "payment.received"), (received, "payment.received")]
    )


def test_two_workers_never_claim_the_same_delivery(migrated: str, connect: Any) -> None:
    add_webhook(migrated, 1, "http://a.example/")
    one, two = connect(), connect()
    with one.cursor() as txn:
        emit(txn, [NewEvent(1, "topup.succeeded", {}) for _ in range(10)], T0)
        one.commit()
        fanout_txn(txn, 100, T0)
        one.commit()
    lease = T0 + timedelta(seconds=30)
    with one.cursor() as first, two.cursor() as second:
        mine = claim_txn(first, 6, T0, lease)  # its transaction still open: rows locked
        theirs = claim_txn(second, 6, T0, lease)
        assert len(mine) == 6 and len(theirs) == 4
        assert not {c.delivery_id for c in mine} & {c.delivery_id for c in theirs}
        one.commit()
        two.commit()
        # Leased: nothing is due again until the lease has passed.
        assert claim_txn(first, 100, T0 + timedelta(seconds=29), lease) == []
        one.commit()
        again = claim_txn(first, 100, lease, lease + timedelta(seconds=30))
        one.commit()
    assert len(again) == 10
    # The worker that lost its lease does not record its attempt over the new one's.
    stale = mine[0]
    with one.cursor() as txn:
        assert record_txn(txn, stale, Outcome(200, "", 5), lease, None, T0).state == ""
        (fresh,) = [c for c in again if c.delivery_id == stale.delivery_id]
        assert record_txn(txn, fresh, Outcome(200, "", 5), lease, None, T0).state == "succeeded"
        one.commit()


def test_schedule_parsing() -> None:
    assert parse_schedule("5s, 5m,2h,1d") == (5.0, 300.0, 7200.0, 86400.0)
    assert parse_schedule("250ms,1.5") == (0.25, 1.5)
    for bad in ("5x", "0s", "", "5s,,5s", "-1s"):
        with pytest.raises(ConfigError, match="SHILLINGS_HOOKS_SCHEDULE"):
            parse_schedule(bad)


def test_default_settings_follow_standard_webhooks() -> None:
    config = HooksConfig.from_env({"SHILLINGS_WEBHOOK_KEY": "A" * 43 + "="})
    assert config.schedule[:7] == (5, 300, 1800, 7200, 18000, 36000, 36000)
    assert 2.5 * 86400 < config.span <= 3 * 86400  # "up to about 3 days"
    assert (config.timeout, config.lease) == (10.0, 30.0)
    with pytest.raises(ConfigError, match="LEASE must be longer"):
        HooksConfig.from_env(
            {
                "SHILLINGS_WEBHOOK_KEY": "A" * 43 + "=",
                "SHILLINGS_HOOKS_TIMEOUT": "10",
                "SHILLINGS_HOOKS_LEASE": "10",
            }
        )


def test_retry_delay_jitter_and_end() -> None:
    schedule = (5.0, 300.0)
    assert retry_delay(schedule, 1, 0) == 5.0
    assert all(300.0 <= (retry_delay(schedule, 2, 10) or 0) <= 330.0 for _ in range(100))
    assert retry_delay(schedule, 3, 10) is None


def test_resolver_size_is_the_app_servers_setting() -> None:
    """SHILLINGS_WEBHOOK_RESOLVER_THREADS: one variable for both process kinds (defaults:
    4 threads, 64 waiting); refused outside its range."""
    from shillings_app.config import AppConfig

    key = {"SHILLINGS_WEBHOOK_KEY": "A" * 43 + "=", "SHILLINGS_JWT_SECRET": "x" * 32}
    app, hooks = AppConfig.from_env(key), HooksConfig.from_env(key)
    assert (app.webhook_resolver_threads, app.webhook_resolver_queue) == (4, 64)
    assert hooks.resolver_threads == 4
    sized = {
        **key,
        "SHILLINGS_WEBHOOK_RESOLVER_THREADS": "7",
        "SHILLINGS_WEBHOOK_RESOLVER_QUEUE": "0",
    }
    app, hooks = AppConfig.from_env(sized), HooksConfig.from_env(sized)
    assert (app.webhook_resolver_threads, app.webhook_resolver_queue) == (7, 0)
    assert hooks.resolver_threads == 7
    for name, bad in (("THREADS", "0"), ("THREADS", "257"), ("QUEUE", "-1")):
        variable = f"SHILLINGS_WEBHOOK_RESOLVER_{name}"
        with pytest.raises(ConfigError, match=variable):
            AppConfig.from_env({**key, variable: bad})


@pytest_twisted.ensureDeferred
async def test_worker_resolves_in_the_configured_threads(database: str) -> None:
    """A worker's resolver runs SHILLINGS_WEBHOOK_RESOLVER_THREADS lookups at once (at most
    its concurrency), and lets as many wait as it sends at once (its sends never get
    ``ResolverBusy``)."""
    from twisted.internet import reactor

    for threads, concurrency, expected in (("3", "8", (3, 8)), ("6", "2", (2, 2))):
        config = HooksConfig.from_env(
            {
                "SHILLINGS_WEBHOOK_KEY": "A" * 43 + "=",
                "SHILLINGS_MYSQL_DSN": database,
                "SHILLINGS_WEBHOOK_RESOLVER_THREADS": threads,
                "SHILLINGS_HOOKS_CONCURRENCY": concurrency,
            }
        )
        worker = HooksWorker(config, reactor)
        await worker.start()  # the database is empty: starting needs none of its tables
        try:
            assert worker._sender is not None
            resolver = worker._sender.resolver
            assert (resolver.threads, resolver.queue) == expected
        finally:
            await worker.stop()
