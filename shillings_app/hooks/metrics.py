"""The metrics of one delivery worker (its own listener, ``SHILLINGS_METRICS_LISTEN``)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from shillings_app.hooks.sender import REFUSED, SECRET
from shillings_app.storage.deliveries import Outcome

DELIVERY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0, 86400.0)
"""Seconds from an event's commit to its delivery: retries take minutes to days."""

RESULTS = ("success", "http_error", "redirect", "timeout", "network_error", "refused", "secret")


def result_of(outcome: Outcome) -> str:
    """The ``result`` label of an attempt (one of ``RESULTS``)."""
    if outcome.succeeded:
        return "success"
    if outcome.error.startswith(REFUSED):
        return "refused"
    if outcome.error.startswith(SECRET):
        return "secret"
    if 300 <= outcome.status_code < 400:
        return "redirect"
    if outcome.status_code:
        return "http_error"
    if outcome.error.startswith("timed out"):
        return "timeout"
    return "network_error"


class HooksMetrics:
    """A registry of its own (tests run several workers in one process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.deliveries = Counter(
            "shillings_hooks_deliveries",
            "Deliveries ended, by outcome: succeeded, or failed (retry schedule exhausted, or"
            " its endpoint disabled or deleted)",
            ["outcome"],
            registry=self.registry,
        )
        self.attempts = Counter(
            "shillings_hooks_attempts",
            "Delivery attempts, by result: success (2xx), http_error, redirect (3xx, not"
            " followed), timeout, network_error, refused (allow list), secret (cannot unseal)",
            ["result"],
            registry=self.registry,
        )
        for result in RESULTS:
            self.attempts.labels(result)
        self.latency = Histogram(
            "shillings_hooks_delivery_latency_seconds",
            "Time from an event's commit to its successful delivery",
            buckets=DELIVERY_BUCKETS,
            registry=self.registry,
        )
        self.fanned_out = Counter(
            "shillings_hooks_events_fanned_out",
            "Events turned into deliveries (one per matching endpoint)",
            registry=self.registry,
        )
        self.disabled = Counter(
            "shillings_hooks_endpoints_disabled",
            "Endpoints disabled after failing for the whole retry schedule",
            registry=self.registry,
        )
        self.lost_leases = Counter(
            "shillings_hooks_lost_leases",
            "Attempts not recorded: the lease had passed to another worker (sent twice)",
            registry=self.registry,
        )
        self.errors = Counter(
            "shillings_hooks_errors",
            "Worker steps that failed (database unavailable, ...); retried after a pause",
            registry=self.registry,
        )
        self.backlog = Gauge(
            "shillings_hooks_backlog",
            "Work waiting, counted every few seconds: events not yet fanned out"
            " (undispatched_events), deliveries pending (pending_deliveries)",
            ["kind"],
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "shillings_hooks_in_flight", "Deliveries being sent now", registry=self.registry
        )
