"""The metrics of one web process (docs/ARCHITECTURE.md, "Metrics").

Requests are counted once each as they end (``observe``, called by the site), by route (the
matched route template, or ``other``: the label set stays bounded whatever clients send),
method and status. Everything else is read from the process's own state when scraped.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import Metric

from shillings_proto.metrics import LATENCY_BUCKETS, StateCollector, counts, gauge

OTHER = "other"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
CACHE_OUTCOMES = ("hit", "miss", "bypass")
LIMIT_CAUSES = ("limit", "unavailable")


class WebMetrics:
    """A registry of its own (several web servers may share a process, as in tests)."""

    def __init__(self, routes: Iterable[str]) -> None:
        self.registry = CollectorRegistry()
        self._routes = frozenset(routes)
        self._requests = Counter(
            "shillings_web_http_requests",
            "HTTP requests answered (or whose client went away: 499), by route, method, status",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self._latency = Histogram(
            "shillings_web_http_request_duration_seconds",
            "Time from a request's arrival to its end, by route",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def route_of(self, path: str) -> str:
        """The route template ``path`` matched (paths are exact: routes have no variables),
        else ``other``."""
        return path if path in self._routes else OTHER

    def observe(self, path: str, method: str, status: int, seconds: float) -> None:
        """Count one finished request."""
        key = (self.route_of(path), method if method in METHODS else OTHER, status)
        children = self._children.get(key)
        if children is None:
            route, method_label, _ = key
            children = (
                self._requests.labels(route, method_label, str(status)),
                self._latency.labels(route),
            )
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)

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
