"""Versioned schema migrations: ``NNNN_name.sql`` files applied in order, tracked in
``schema_migrations``; a version may add a Python step (``steps.STEPS``), run after its SQL in
the transaction that records it. Blocking (pymysql); run before the reactor serves requests."""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pymysql

from shillings_app.config import parse_dsn
from shillings_app.migrations.steps import STEPS, Report

MIGRATIONS_DIR = Path(__file__).parent
_LOCK_NAME = "shillings_schema_migrations"
_LOCK_TIMEOUT_S = 60
_FILE_RE = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


@dataclass(frozen=True)
class Migration:
    version: str
    path: Path

    def statements(self) -> list[str]:
        """The SQL statements of the file (split on ``;`` at line end; ``--`` comments dropped)."""
        lines = [
            line
            for line in self.path.read_text(encoding="utf-8").splitlines()
            if not line.lstrip().startswith("--")
        ]
        parts = re.split(r";\s*$", "\n".join(lines), flags=re.MULTILINE)
        return [p.strip() for p in parts if p.strip()]


def available() -> list[Migration]:
    """All migration files, in version order."""
    found = []
    for path in MIGRATIONS_DIR.iterdir():
        if _FILE_RE.match(path.name):
            found.append(Migration(version=path.stem, path=path))
    if not found:
        raise RuntimeError(f"no migration files in {MIGRATIONS_DIR} (package data not installed?)")
    return sorted(found, key=lambda m: m.version)


def _connect(kwargs: dict[str, Any]) -> pymysql.connections.Connection:
    return pymysql.connect(**kwargs, autocommit=True, connect_timeout=10)


def ensure_database(dsn: str) -> bool:
    """Create the database named in ``dsn`` if it does not exist; True when it was created."""
    kwargs = parse_dsn(dsn)
    name = kwargs.pop("database")
    conn = _connect(kwargs)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM information_schema.schemata WHERE schema_name = %s", (name,))
            if cur.fetchone():
                return False
            cur.execute(
                f"CREATE DATABASE IF NOT EXISTS `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
            )
            return True
    finally:
        conn.close()


def _applied(cur: Any) -> list[str]:
    cur.execute("SHOW TABLES LIKE 'schema_migrations'")
    if not cur.fetchone():
        return []
    cur.execute("SELECT version FROM schema_migrations ORDER BY version")
    return [row[0] for row in cur.fetchall()]


def _stderr(line: str) -> None:
    print(f"migration: {line}", file=sys.stderr, flush=True)


def migrate(dsn: str, report: Report = _stderr) -> list[str]:
    """Create the database if needed and apply every pending migration; return the versions
    applied (empty when up to date). What a Python step needs an operator to see goes to
    ``report`` (stderr by default). Safe to run concurrently: a named lock serialises it."""
    ensure_database(dsn)
    conn = _connect(parse_dsn(dsn))
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT GET_LOCK(%s, %s)", (_LOCK_NAME, _LOCK_TIMEOUT_S))
            (locked,) = cur.fetchone()
            if locked != 1:
                raise RuntimeError("timed out waiting for another migration to finish")
            try:
                cur.execute(
                    "CREATE TABLE IF NOT EXISTS schema_migrations ("
                    " version VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,"
                    " applied_at DATETIME(6) NOT NULL,"
                    " PRIMARY KEY (version)"
                    ") ENGINE=InnoDB"
                )
                done = set(_applied(cur))
                applied_now = []
                for migration in available():
                    if migration.version in done:
                        continue
                    for statement in migration.statements():
                        cur.execute(statement)
                    cur.execute("BEGIN")
                    step = STEPS.get(migration.version)
                    if step is not None:
                        step(cur, report)
                    cur.execute(
                        "INSERT INTO schema_migrations (version, applied_at)"
                        " VALUES (%s, UTC_TIMESTAMP(6))",
                        (migration.version,),
                    )
                    cur.execute("COMMIT")
                    applied_now.append(migration.version)
                return applied_now
            finally:
                cur.execute("SELECT RELEASE_LOCK(%s)", (_LOCK_NAME,))
    finally:
        conn.close()
