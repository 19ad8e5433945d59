"""The delivery worker as a Twisted service (``twist shillings-hooks``; ``shillings-app
hooks`` runs the same service)."""

from __future__ import annotations

from typing import Any

from twisted.application.service import MultiService
from twisted.python import usage

from shillings_app.hooks.config import HooksConfig
from shillings_app.hooks.worker import HooksWorker
from shillings_proto.services import AsyncService


class HooksService(AsyncService):
    """Starts the worker; stops it letting the sends in progress finish."""

    def __init__(self, worker: HooksWorker, reactor: Any) -> None:
        super().__init__("delivery worker", reactor, worker.start, worker.stop)
        self.worker = worker


def hooks_service(config: HooksConfig, reactor: Any) -> MultiService:
    """One delivery worker under a ``MultiService`` (``getServiceNamed("delivery worker")``)."""
    top = MultiService()
    HooksService(HooksWorker(config, reactor), reactor).setServiceParent(top)
    return top


class Options(usage.Options):
    """``twist shillings-hooks``: configured by ``SHILLINGS_*`` variables (see README)."""


def makeService(options: Options) -> MultiService:
    """The ``twist`` entry point (the schema is the app server's to migrate)."""
    from twisted.internet import reactor

    return hooks_service(HooksConfig.from_env(), reactor)
