"""A web process as a Twisted service (``twist shillings-web``; ``shillings-web`` runs the
same service): the app-server pool, Redis and the HTTP site, drained at stop."""

from __future__ import annotations

from typing import Any

from twisted.application.service import MultiService
from twisted.python import usage

from shillings_proto.services import AsyncService
from shillings_web.config import WebConfig
from shillings_web.server import WebServer


class WebService(AsyncService):
    """Starts ``server`` listening on ``listen`` (default: its configuration's)."""

    def __init__(self, server: WebServer, reactor: Any, listen: str | None = None) -> None:
        super().__init__("web process", reactor, lambda: server.start(listen), server.stop)
        self.server = server


def web_service(config: WebConfig, reactor: Any, listen: str | None = None) -> MultiService:
    """One web process under one ``MultiService`` (``getServiceNamed("web process")``)."""
    top = MultiService()
    WebService(WebServer(config, reactor), reactor, listen).setServiceParent(top)
    return top


def listen_option(listen: str | None, port: int | None) -> str | None:
    """The endpoint ``--listen`` or ``--port`` asks for (None: the configuration's)."""
    if port is None:
        return listen
    if not 0 < port < 65536:
        raise usage.UsageError("--port must be 1-65535")
    return f"tcp:{port}:interface=127.0.0.1"


class Options(usage.Options):
    """``twist shillings-web``: configured by ``SHILLINGS_*`` variables (see README)."""

    optParameters = [
        ["listen", None, None, "Twisted server endpoint (default: $SHILLINGS_WEB_LISTEN)"],
        ["port", None, None, "listen on 127.0.0.1:N (shortcut for --listen)", int],
    ]

    def postOptions(self) -> None:
        if self["listen"] and self["port"] is not None:
            raise usage.UsageError("--listen and --port exclude each other")
        self["listen"] = listen_option(self["listen"], self["port"])


def makeService(options: Options) -> MultiService:
    """The ``twist`` entry point."""
    from twisted.internet import reactor

    return web_service(WebConfig.from_env(), reactor, options["listen"])
