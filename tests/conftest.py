"""Session-wide private MariaDB and Redis; a fresh database per test."""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
from collections.abc import Iterator

import pymysql
import pytest

from tests.harness import MariaDB, Process, start_mariadb, start_redis

_db_counter = itertools.count()


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
