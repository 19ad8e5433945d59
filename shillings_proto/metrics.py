"""Prometheus exposition shared by every process kind: each process serves its own registry
on its own listener (``SHILLINGS_METRICS_LISTEN``), never on the public API port."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from twisted.internet import defer
from twisted.internet.endpoints import serverFromString
from twisted.internet.interfaces import IDelayedCall, IListeningPort
from twisted.logger import Logger
from twisted.web.resource import Resource
from twisted.web.server import Site

log = Logger()


class MetricsResource(Resource):
    """``GET /metrics`` (any path): the registry in the Prometheus text format."""

    isLeaf = True

    def __init__(self, registry: CollectorRegistry) -> None:
        super().__init__()
        self._registry = registry

    def render_GET(self, request: Any) -> bytes:
        request.setHeader(b"Content-Type", CONTENT_TYPE_LATEST.encode("ascii"))
        return generate_latest(self._registry)


RETRY_S = 5.0
"""Seconds between attempts to listen while the metrics address is taken."""


class MetricsListener:
    """Serves ``registry`` on the Twisted server endpoint ``listen``. An endpoint string
    that does not parse raises at once; an address that cannot be listened on (taken) is
    logged and tried again every ``retry`` s: metrics never keep a process from serving."""

    def __init__(
        self, reactor: Any, listen: str, registry: CollectorRegistry, retry: float = RETRY_S
    ) -> None:
        self._reactor = reactor
        self._retry_s = retry
        self._listen = listen
        self._endpoint = serverFromString(reactor, listen)
        self._site = Site(MetricsResource(registry))
        self._site.noisy = False
        self._site.log = lambda request: None  # type: ignore[method-assign]  # not API requests
        self._retry: IDelayedCall | None = None
        self._failures = 0
        self.port: IListeningPort | None = None

    async def start(self) -> None:
        """Listen (or keep trying in the background)."""
        self._retry = None
        try:
            self.port = await self._endpoint.listen(self._site)
        except Exception as e:
            if self._failures == 0:
                log.error(
                    "cannot serve metrics on {listen}: {error}; trying every {retry}s",
                    listen=self._listen,
                    error=str(e),
                    retry=self._retry_s,
                )
            self._failures += 1
            self._retry = self._reactor.callLater(
                self._retry_s, lambda: defer.ensureDeferred(self.start())
            )
            return
        if self._failures:
            log.info("serving metrics on {listen} now", listen=self._listen)

    @property
    def tcp_port(self) -> int:
        """The TCP port listened on (0 while not listening)."""
        if self.port is None:
            return 0
        host: Any = self.port.getHost()
        return int(host.port)

    async def stop(self) -> None:
        if self._retry is not None and self._retry.active():
            self._retry.cancel()
        self._retry = None
        if self.port is not None:
            port, self.port = self.port, None
            await defer.maybeDeferred(port.stopListening)


LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Histogram buckets (seconds) of request latencies, web and app alike."""


class StateCollector(Collector):
    """Metrics read from a process's own state when scraped (read-only callbacks), so the
    code that keeps the state needs no metrics objects of its own."""

    def __init__(self, read: Callable[[], Iterable[Metric]]) -> None:
        self._read = read

    def collect(self) -> Iterable[Metric]:
        return list(self._read())


def gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


def counts(
    name: str,
    documentation: str,
    labels: Sequence[str],
    samples: Iterable[tuple[Sequence[str], float]],
) -> CounterMetricFamily:
    """A counter family of ``(label values, value)`` samples."""
    family = CounterMetricFamily(name, documentation, labels=labels)
    for values, value in samples:
        family.add_metric(values, value)
    return family
