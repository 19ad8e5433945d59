"""The request counter and latency histogram, counted in plain numbers, expose what
``prometheus_client``'s ``Counter`` and ``Histogram`` fed the same requests expose."""

from __future__ import annotations

import re

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

from shillings_proto.metrics import LATENCY_BUCKETS
from shillings_web.metrics import OTHER, WebMetrics

ROUTES = ["/v1/pay", "/v1/account"]
REQUESTS = [
    ("/v1/pay", "POST", 200, 0.001),
    ("/v1/account", "GET", 200, 0.002),  # on a bound: that bucket
    ("/v1/pay", "POST", 422, 0.0111),
    ("/nowhere", "BREW", 404, 0.3),
    ("/v1/pay", "POST", 200, 11.0),  # past the last bound: +Inf only
    ("/v1/account", "GET", 499, 0.0),
    ("/v1/pay", "POST", 200, 0.05),
]
CREATED = re.compile(rb"(_created(\{[^}]*\})?) [0-9.e+]+")


def _native(routes: list[str]) -> CollectorRegistry:
    """What the web process exposed before: a Counter and a Histogram."""
    registry = CollectorRegistry()
    requests = Counter(
        "shillings_web_http_requests",
        "HTTP requests answered (or whose client went away: 499), by route, method, status",
        ["route", "method", "status"],
        registry=registry,
    )
    latency = Histogram(
        "shillings_web_http_request_duration_seconds",
        "Time from a request's arrival to its end, by route",
        ["route"],
        buckets=LATENCY_BUCKETS,
        registry=registry,
    )
    for path, method, status, seconds in REQUESTS:
        route = path if path in routes else OTHER
        requests.labels(route, method if method != "BREW" else OTHER, str(status)).inc()
        latency.labels(route).observe(seconds)
    return registry


@pytest.mark.parametrize("generate", [generate_latest, generate_openmetrics])
def test_the_same_exposition_as_a_counter_and_a_histogram(generate):
    metrics = WebMetrics(ROUTES)
    for request in REQUESTS:
        metrics.observe(*request)
    ours = generate(metrics.registry)
    theirs = generate(_native(ROUTES))
    assert b'route="other"' in ours and b'le="+Inf"' in ours
    assert CREATED.sub(rb"\1 T", ours) == CREATED.sub(rb"\1 T", theirs)
    assert ours.count(b"_created") == theirs.count(b"_created") > 0
