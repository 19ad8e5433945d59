"""The migrated schema, made once per test session and copied into each test's database:
copying a dozen tables is several times cheaper than running every migration (their
ALTER TABLEs rebuild tables) for each of the hundreds of tests that start an app server."""

from __future__ import annotations

from dataclasses import dataclass

import pymysql

from shillings_app.config import parse_dsn
from shillings_app.migrations import migrate
from tests.harness import MariaDB

TEMPLATE = "schema_template"


@dataclass(frozen=True)
class Schema:
    """The ``CREATE TABLE`` of every table ``migrate`` made, and the tables holding rows."""

    socket: str
    tables: tuple[tuple[str, str], ...]
    filled: tuple[str, ...]

    def copy_to(self, dsn: str) -> None:
        """Give the empty database of ``dsn`` the template's tables and rows."""
        name = parse_dsn(dsn)["database"]
        conn = pymysql.connect(unix_socket=self.socket, user="root", database=name)
        try:
            with conn.cursor() as cur:
                cur.execute("SET foreign_key_checks = 0")
                for _table, create in self.tables:
                    cur.execute(create)
                for table in self.filled:
                    cur.execute(f"INSERT INTO `{table}` SELECT * FROM `{TEMPLATE}`.`{table}`")
            conn.commit()
        finally:
            conn.close()


def create_tables(socket: str, database: str) -> tuple[tuple[str, str], ...]:
    """``(table, SHOW CREATE TABLE)`` of every table of ``database``, by name."""
    conn = pymysql.connect(unix_socket=socket, user="root", database=database)
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW FULL TABLES")
            rows = sorted(cur.fetchall())
            kinds = {kind for _name, kind in rows}
            assert kinds <= {"BASE TABLE"}, f"the copy knows tables only, not {kinds}"
            tables = []
            for table, _kind in rows:
                cur.execute(f"SHOW CREATE TABLE `{table}`")
                tables.append((table, str(cur.fetchone()[1])))
            return tuple(tables)
    finally:
        conn.close()


def migrated_schema(mariadb: MariaDB) -> Schema:
    """Migrate the template database; raise if it holds what ``Schema`` does not copy."""
    migrate(mariadb.dsn(TEMPLATE), report=lambda line: None)
    tables = create_tables(mariadb.socket, TEMPLATE)
    conn = pymysql.connect(unix_socket=mariadb.socket, user="root", database=TEMPLATE)
    try:
        with conn.cursor() as cur:
            for what in ("TRIGGERS", "PROCEDURE STATUS", "FUNCTION STATUS", "EVENTS"):
                where = "WHERE Db = DATABASE()" if "STATUS" in what else ""
                cur.execute(f"SHOW {what} {where}")
                assert not cur.fetchall(), f"the copy does not make {what.lower()}"
            filled = []
            for table, _create in tables:
                cur.execute(f"SELECT EXISTS (SELECT 1 FROM `{table}`)")
                if cur.fetchone()[0]:
                    filled.append(table)
    finally:
        conn.close()
    return Schema(socket=mariadb.socket, tables=tables, filled=tuple(filled))
