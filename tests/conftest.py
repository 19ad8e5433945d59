"""Session-wide private MariaDB and Redis; a fresh database per test (migrated ones are
copies of a schema migrated once per session)."""

from __future__ import annotations

import dataclasses
import itertools
import os
import shutil
import tempfile
from collections.abc import Iterator
from typing import Any

import pymysql
import pytest
import pytest_twisted

from tests.harness import MariaDB, Process, start_mariadb, start_redis, use_memory_for_scratch
from tests.reliability.load import FULL
from tests.schema import Schema, migrated_schema

_db_counter = itertools.count()
_scratch: list[str] = []


def pytest_configure(config: pytest.Config) -> None:
    """Temp files in memory (``use_memory_for_scratch``), except in the runs that write
    figures (`make reliability`, `make test-cluster`): those are of stacks on disk."""
    if not FULL and not os.environ.get("SHILLINGS_CLUSTER_REPORT"):
        scratch = use_memory_for_scratch()
        if scratch:
            _scratch.append(scratch)


def pytest_unconfigure(config: pytest.Config) -> None:
    for scratch in _scratch:
        shutil.rmtree(scratch, ignore_errors=True)


@pytest.fixture(scope="session")
def tmp_root() -> Iterator[str]:
    # Short path: unix socket paths are limited to ~107 bytes.
    root = tempfile.mkdtemp(prefix="shl-")
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def mariadb(tmp_root: str) -> Iterator[MariaDB]:
    server = start_mariadb(tmp_root)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def schema(mariadb: MariaDB) -> Schema:
    """Every migration applied once, to a database the tests never touch: ``app_server``
    copies it instead of migrating each test's database."""
    return migrated_schema(mariadb)


@pytest.fixture(scope="session")
def redis_server(tmp_root: str) -> Iterator[Process]:
    server = start_redis(tmp_root)
    yield server
    server.stop()


@pytest.fixture
def database(mariadb: MariaDB) -> Iterator[str]:
    """A new, empty database; yields its DSN. Dropped after the test."""
    name = f"t{os.getpid()}_{next(_db_counter)}"
    conn = pymysql.connect(unix_socket=mariadb.socket, user="root")
    try:
        with conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
        yield mariadb.dsn(name)
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
    finally:
        conn.close()


TEST_JWT_SECRET = "shillings-test-jwt-secret-0123456789abcdef"
"""The JWT secret of the ``app_server`` fixture (tests decode tokens with it)."""
TEST_WEBHOOK_KEY = bytes(range(32))
"""The webhook key of the ``app_server`` fixture, which lets webhooks target 127.0.0.0/8
(the default, ``public``, refuses loopback)."""


@pytest_twisted.async_yield_fixture
async def app_server(database: str, schema: Schema):
    """An in-process app server on 127.0.0.1:<free port> against ``database``, migrated (a
    copy of ``schema``: the same tables, keys and ``schema_migrations`` rows as ``migrate``).

    Yields the ``shillings_app.server.AppServer``: ``.address`` (client endpoint string),
    ``.port``, ``.config``, ``.dsn``; ``await .stop()`` drops every connection and closes the
    pool, ``await .start()`` listens again on the same port.
    """
    from shillings_app.config import AppConfig
    from shillings_app.server import AppServer
    from shillings_app.webhooks.allow import parse_allow

    schema.copy_to(database)
    config = AppConfig(
        listen="tcp:0:interface=127.0.0.1",
        mysql_dsn=database,
        jwt_secret=TEST_JWT_SECRET,
        token_ttl=3600,
        bcrypt_cost=4,
        db_pool_min=1,
        db_pool_max=10,
        webhook_key=TEST_WEBHOOK_KEY,
        webhook_allow=parse_allow("127.0.0.0/8"),
    )
    server = AppServer(config)
    await server.start()
    yield server
    await server.stop()


@pytest_twisted.async_yield_fixture
async def make_server(app_server):
    """Start extra app servers on the same database with config overrides; stopped after."""
    started: list[Any] = []

    async def _make(**overrides: object) -> Any:
        from shillings_app.server import AppServer

        config = dataclasses.replace(
            app_server.config, listen="tcp:0:interface=127.0.0.1", **overrides
        )
        server = AppServer(config)
        await server.start()
        started.append(server)
        return server

    yield _make
    for server in started:
        await server.stop()
