"""Prometheus exposition shared by every process kind: each process serves its own registry
on its own listener (``SHILLINGS_METRICS_LISTEN``), never on the public API port."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from twisted.internet.endpoints import serverFromString
from twisted.internet.interfaces import IListeningPort
from twisted.web.resource import Resource
from twisted.web.server import Site


class MetricsResource(Resource):
    """``GET /metrics`` (any path): the registry in the Prometheus text format."""

    isLeaf = True

    def __init__(self, registry: CollectorRegistry) -> None:
        super().__init__()
        self._registry = registry

    def render_GET(self, request: Any) -> bytes:
        request.setHeader(b"Content-Type", CONTENT_TYPE_LATEST.encode("ascii"))
        return generate_latest(self._registry)


async def listen_metrics(reactor: Any, listen: str, registry: CollectorRegistry) -> IListeningPort:
    """Serve ``registry`` on the Twisted server endpoint ``listen``."""
    site = Site(MetricsResource(registry))
    site.noisy = False
    site.log = lambda request: None  # type: ignore[method-assign]  # scrapes are not requests
    port: IListeningPort = await serverFromString(reactor, listen).listen(site)
    return port


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
