"""``shillings-app``: ``migrate`` applies schema migrations, ``serve`` runs the app server,
``hooks`` a webhook delivery worker, ``reconcile`` checks the ledger."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import pymysql
from twisted.logger import Logger

from shillings_app.config import AppConfig, ConfigError, mysql_dsn
from shillings_app.logs import start_logging
from shillings_proto.logfile import log_stream
from shillings_proto.services import run

log = Logger(namespace="shillings.app")


def cmd_migrate(config: AppConfig) -> int:
    from shillings_app.service import migrate  # the app server's modules: not for hooks

    applied = migrate(config)
    if applied:
        for version in applied:
            print(f"applied {version}")
    else:
        print("schema up to date")
    return 0


def cmd_serve(config: AppConfig, log_file: str | None = None) -> int:
    """Apply pending migrations, then run the app server's service until a signal, logging
    to stdout or ``log_file``."""
    from twisted.internet import reactor

    from shillings_app.service import AppService, app_service, migrate

    output = start_logging(config.log_level, log_stream(log_file), reactor)
    try:
        applied = migrate(config)
        if applied:
            log.info("applied migrations {versions}", versions=", ".join(applied))
        service = app_service(config, reactor)
        run(service, reactor)
    finally:
        output.stop()
    child = service.getServiceNamed("app server")
    return 1 if isinstance(child, AppService) and child.failed else 0


def cmd_hooks(log_file: str | None = None) -> int:
    """Run one webhook delivery worker until a signal, logging to stdout or ``log_file``."""
    from twisted.internet import reactor

    from shillings_app.hooks.config import HooksConfig
    from shillings_app.hooks.service import HooksService, hooks_service

    try:
        config = HooksConfig.from_env()
    except ConfigError as e:
        print(f"shillings-app hooks: configuration error: {e}", file=sys.stderr)
        return 2
    output = start_logging(config.log_level, log_stream(log_file), reactor)
    try:
        service = hooks_service(config, reactor)
        run(service, reactor)
    finally:
        output.stop()
    child = service.getServiceNamed("delivery worker")
    return 1 if isinstance(child, HooksService) and child.failed else 0


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
    serve = sub.add_parser("serve", help="apply pending migrations, then serve (foreground)")
    hooks = sub.add_parser("hooks", help="run a webhook delivery worker (foreground)")
    for command in (serve, hooks):
        command.add_argument(
            "--log-file", metavar="PATH", help="write the log to PATH (rotated by size), not stdout"
        )
    check = sub.add_parser("reconcile", help="check the ledger; exit 1 on any discrepancy")
    check.add_argument("--show", type=int, default=20, help="offending users named per check")
    args = parser.parse_args(argv)
    if args.command == "reconcile":
        return cmd_reconcile(max(args.show, 0))
    if args.command == "hooks":
        return cmd_hooks(args.log_file)
    try:
        config = AppConfig.from_env()
    except ConfigError as e:
        print(f"shillings-app: configuration error: {e}", file=sys.stderr)
        return 2
    try:
        if args.command == "migrate":
            return cmd_migrate(config)
        return cmd_serve(config, args.log_file)
    except pymysql.err.MySQLError as e:
        print(f"shillings-app: database error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
