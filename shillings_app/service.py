"""The app server as a Twisted service (``twist shillings-app``; ``shillings-app serve``
runs the same service): schema migrations at start, then the server, drained at stop."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

import pymysql
from twisted.application.service import MultiService
from twisted.python import usage

from shillings_app.config import AppConfig
from shillings_app.holdsweep import HoldSweep
from shillings_app.server import AppServer
from shillings_proto.services import AsyncService

T = TypeVar("T")

DB_WAIT_S = 30.0
"""How long ``serve`` and ``migrate`` wait for MySQL to accept connections at start."""
DRAIN_S = 5.0
"""How long a stopping app server lets the requests in progress finish."""


def wait_for_db(what: Callable[[], T], seconds: float = DB_WAIT_S) -> T:
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


def migrate(config: AppConfig) -> list[str]:
    """Apply pending migrations (waiting for MySQL); the versions applied."""
    from shillings_app.migrations import migrate as apply

    return wait_for_db(lambda: apply(config.mysql_dsn))


class AppService(AsyncService):
    """Starts ``server`` (its housekeeping ``TimerService`` with it); stops it draining."""

    def __init__(self, server: AppServer, reactor: Any) -> None:
        super().__init__(
            "app server", reactor, server.start, lambda: server.stop(drain_timeout=DRAIN_S)
        )
        self.server = server


def app_service(config: AppConfig, reactor: Any) -> MultiService:
    """The app server under one ``MultiService`` (``getServiceNamed("app server")``), with
    its sweep of expired holds (``"hold sweep"``, stopped first)."""
    top = MultiService()
    server = AppServer(config, reactor)
    AppService(server, reactor).setServiceParent(top)
    sweep = HoldSweep(server, config.hold_sweep_interval, reactor)
    sweep.setName("hold sweep")
    sweep.setServiceParent(top)
    return top


class Options(usage.Options):
    """``twist shillings-app``: configured by ``SHILLINGS_*`` variables (see README)."""

    optFlags = [["no-migrate", None, "do not apply pending schema migrations at start"]]


def makeService(options: Options) -> MultiService:
    """The ``twist`` entry point: read the settings, migrate, build the service."""
    from twisted.internet import reactor

    config = AppConfig.from_env()
    if not options["no-migrate"]:
        migrate(config)
    return app_service(config, reactor)
