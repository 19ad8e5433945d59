"""``shillings-app``: ``migrate`` applies schema migrations, ``serve`` runs the app server,
``reconcile`` checks the ledger."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import pymysql
from twisted.internet import defer
from twisted.logger import Logger

from shillings_app.config import AppConfig, ConfigError, mysql_dsn
from shillings_app.logs import start_logging

T = TypeVar("T")
log = Logger(namespace="shillings.app")

DB_WAIT_S = 30.0
"""How long ``serve`` and ``migrate`` wait for MySQL to accept connections at start."""


def _wait_for_db(what: Callable[[], T], seconds: float = DB_WAIT_S) -> T:
    """Run ``what``, retrying while MySQL is not reachable yet (bounded)."""
    from shillings_app.storage.database import CONNECT_CODES

    deadline = time.monotonic() + seconds
    while True:
        try:
            return what()
        except pymysql.err.OperationalError as e:
            if e.args and e.args[0] in CONNECT_CODES and time.monotonic() < deadline:
                time.sleep(0.5)
                continue
            raise


def _migrate(config: AppConfig) -> list[str]:
    from shillings_app.migrations import migrate

    return _wait_for_db(lambda: migrate(config.mysql_dsn))


def cmd_migrate(config: AppConfig) -> int:
    applied = _migrate(config)
    if applied:
        for version in applied:
            print(f"applied {version}")
    else:
        print("schema up to date")
    return 0


def cmd_serve(config: AppConfig) -> int:
    from twisted.internet import reactor as installed_reactor

    from shillings_app.server import AppServer

    reactor: Any = installed_reactor

    start_logging(config.log_level)
    applied = _migrate(config)
    if applied:
        log.info("applied migrations {versions}", versions=", ".join(applied))
    server = AppServer(config)
    exit_code = [0]

    async def start() -> None:
        try:
            await server.start()
        except Exception:
            log.failure("app server failed to start")
            exit_code[0] = 1
            reactor.stop()

    reactor.callWhenRunning(lambda: defer.ensureDeferred(start()))
    reactor.addSystemEventTrigger(
        "before", "shutdown", lambda: defer.ensureDeferred(server.stop(drain_timeout=5.0))
    )
    reactor.run()
    return exit_code[0]


def cmd_reconcile(show: int) -> int:
    """Check the ledger: 0 when it holds, 1 on any discrepancy, 2 when it cannot be read."""
    from shillings_app.reconcile import reconcile

    try:
        report = reconcile(mysql_dsn(), show)
    except ConfigError as e:
        print(f"shillings-app: configuration error: {e}", file=sys.stderr)
        return 2
    except pymysql.err.MySQLError as e:
        print(f"shillings-app reconcile: cannot read the database: {e}", file=sys.stderr)
        return 2
    print(report.text())
    return 0 if report.ok else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="shillings-app", description="The Shillings application server."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate", help="create the database if needed and apply pending migrations")
    sub.add_parser("serve", help="apply pending migrations, then serve (foreground)")
    check = sub.add_parser("reconcile", help="check the ledger; exit 1 on any discrepancy")
    check.add_argument("--show", type=int, default=20, help="offending users named per check")
    args = parser.parse_args(argv)
    if args.command == "reconcile":
        return cmd_reconcile(max(args.show, 0))
    try:
        config = AppConfig.from_env()
    except ConfigError as e:
        print(f"shillings-app: configuration error: {e}", file=sys.stderr)
        return 2
    try:
        if args.command == "migrate":
            return cmd_migrate(config)
        return cmd_serve(config)
    except pymysql.err.MySQLError as e:
        print(f"shillings-app: database error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
