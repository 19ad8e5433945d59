"""Running a process's ``MultiService`` under the reactor, the way ``twist`` does: start it
once the reactor runs, stop it (waiting for its Deferred) before the reactor shuts down."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from twisted.application.service import IService, Service
from twisted.internet import defer
from twisted.internet.error import CannotListenError
from twisted.logger import Logger
from twisted.python.failure import Failure

log = Logger(namespace="shillings.service")


class AsyncService(Service):
    """A service whose start and stop are coroutines (``start()``, ``stop()``). A failed
    start is logged and stops the reactor; ``failed`` then says so (exit status 1)."""

    def __init__(
        self,
        name: str,
        reactor: Any,
        start: Callable[[], Coroutine[Any, Any, None]],
        stop: Callable[[], Coroutine[Any, Any, None]],
    ) -> None:
        self.setName(name)
        self._reactor = reactor
        self._start = start
        self._stop = stop
        self.failed = False
        self.started: defer.Deferred[None] | None = None

    def startService(self) -> None:
        super().startService()
        self.started = defer.ensureDeferred(self._start())
        self.started.addErrback(self._start_failed)

    def _start_failed(self, failure: Failure) -> None:
        if failure.check(CannotListenError):
            log.critical("{name} cannot listen: {error}", name=self.name, error=failure.value)
        else:
            log.failure("{name} failed to start", failure, name=self.name)
        self.failed = True
        self._reactor.stop()

    def stopService(self) -> defer.Deferred[None]:
        super().stopService()
        return defer.ensureDeferred(self._stop())


def run(service: IService, reactor: Any) -> None:
    """Start ``service`` when the reactor runs, stop it before shutdown, run the reactor."""
    reactor.callWhenRunning(service.startService)
    reactor.addSystemEventTrigger("before", "shutdown", service.stopService)
    reactor.run()
