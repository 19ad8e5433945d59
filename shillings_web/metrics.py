"""The metrics of one web process (docs/ARCHITECTURE.md, "Metrics").

Requests are counted once each as they end (``observe``, called by the site), by route (the
matched route template, or ``other``: the label set stays bounded whatever clients send),
method and status. Everything else is read from the process's own state when scraped.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Iterable, Iterator
from itertools import accumulate
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.utils import floatToGoString

from shillings_proto.metrics import LATENCY_BUCKETS, StateCollector, counts, gauge

OTHER = "other"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
CACHE_OUTCOMES = ("hit", "miss", "bypass")
LIMIT_CAUSES = ("limit", "unavailable")
_LE = [*(floatToGoString(bound) for bound in LATENCY_BUCKETS), "+Inf"]


class WebMetrics:
    """A registry of its own (several web servers may share a process, as in tests).

    Each request is counted in plain numbers (a count per route, method and status; a
    count per latency bucket and a sum per route) that become the request counter and the
    latency histogram when scraped: the same families and samples ``prometheus_client``'s
    ``Counter`` and ``Histogram`` expose (test), without their per-sample locks and
    checks on every request (a web process is one thread: the reactor's).
    """

    def __init__(self, routes: Iterable[str]) -> None:
        self.registry = CollectorRegistry()
        self._routes = frozenset(routes)
        self._requests: dict[tuple[str, str, int], list[float]] = {}
        """(route, method, status) -> [count, created]."""
        self._latency: dict[str, tuple[list[int], list[float]]] = {}
        """route -> (count per bucket, +Inf last; [sum, created])."""
        self.registry.register(StateCollector(self._collect))

    def observe(self, path: str, method: str, status: int, seconds: float) -> None:
        """Count one finished request: by the route template ``path`` matched (paths are
        exact: routes have no variables), else ``other``."""
        route = path if path in self._routes else OTHER
        key = (route, method if method in METHODS else OTHER, status)
        counted = self._requests.get(key)
        if counted is None:
            counted = self._requests[key] = [0, time.time()]
        counted[0] += 1
        latency = self._latency.get(route)
        if latency is None:
            latency = self._latency[route] = ([0] * (len(LATENCY_BUCKETS) + 1), [0.0, time.time()])
        latency[0][bisect_left(LATENCY_BUCKETS, seconds)] += 1
        latency[1][0] += seconds

    def _collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            "shillings_web_http_requests",
            "HTTP requests answered (or whose client went away: 499), by route, method, status",
            labels=["route", "method", "status"],
        )
        for (route, method, status), (count, created) in self._requests.items():
            requests.add_metric([route, method, str(status)], count, created=created)
        yield requests
        name = "shillings_web_http_request_duration_seconds"
        latency = HistogramMetricFamily(
            name, "Time from a request's arrival to its end, by route", labels=["route"]
        )
        for route, (buckets, (total, created)) in self._latency.items():
            cumulative = list(accumulate(buckets))
            latency.add_metric([route], list(zip(_LE, cumulative, strict=True)), total)
            latency.add_sample(name + "_created", {"route": route}, created)
        yield latency

    def watch(self, site: Any, pool: Any, redis: Any, cache: Any, limiters: dict[str, Any]) -> None:
        """Read the site's, app pool's, Redis's, cache's and limiters' state when scraped."""

        def read() -> Iterator[Metric]:
            yield gauge("shillings_web_http_in_flight", "HTTP requests in progress", site.in_flight)
            yield gauge(
                "shillings_web_app_connections",
                "Live connections to app servers",
                pool.live_connections,
            )
            yield gauge(
                "shillings_web_app_in_flight",
                "Requests sent to app servers and not yet answered",
                pool.in_flight,
            )
            yield gauge(
                "shillings_web_app_waiting",
                "Calls waiting for a live app-server connection",
                pool.waiting,
            )
            yield gauge("shillings_web_redis_up", "1 when Redis is connected", int(redis.connected))
            yield gauge(
                "shillings_web_cache_invalidations_pending",
                "Cache invalidations Redis has not taken yet (this process reads no profile"
                " from the cache meanwhile): keys to delete, plus 1 to outdate every entry",
                cache.pending,
            )
            yield counts(
                "shillings_web_cache_lookups",
                "Profile cache lookups: hit (served from Redis), miss (read from the app server"
                " and stored), bypass (cache not usable: Redis down, invalidation pending,"
                " new epoch, fill race lost)",
                ["outcome"],
                (([outcome], cache.outcomes[outcome]) for outcome in CACHE_OUTCOMES),
            )
            yield counts(
                "shillings_web_limiter_refusals",
                "Attempts refused by a rate limit: limit (429) or unavailable (503: Redis could"
                " not record the attempt)",
                ["limit", "cause"],
                (
                    ([name, cause], limiter.refusals[cause])
                    for name, limiter in limiters.items()
                    for cause in LIMIT_CAUSES
                ),
            )

        self.registry.register(StateCollector(read))
