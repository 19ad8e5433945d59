"""The metrics of one app server (docs/ARCHITECTURE.md, "Metrics").

Requests are counted as they are answered (``observe``, called by the protocol), by command
and status; payments and top-ups from a PAY / TPU request answered 200, refunds from an RFD
answered 201 (with the amount from the answer: a request may leave it to what remains),
holds as they are created, captured, voided (answered) or expired (by the sweep).
Connections, requests in progress, the database pool and its retries are read from the
server's state when scraped.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import HistogramMetricFamily, Metric

from shillings_proto import pb
from shillings_proto.metrics import LATENCY_BUCKETS, StateCollector, counts, gauge

COMMANDS = frozenset(pb.Command.keys())
RETRY_CAUSES = ("reconnect", "lock_conflict", "retry_transaction")
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
"""Upper bounds of the group-commit batch size histogram (requests per transaction)."""


def batch_sizes(batchers: dict[str, Any]) -> HistogramMetricFamily:
    """``shillings_app_batch_size``: group-commit transactions by requests in them, per
    operation, from each ``Batcher``'s counts (``sizes``)."""
    family = HistogramMetricFamily(
        "shillings_app_batch_size",
        "Requests applied per group-commit transaction, by operation",
        labels=["operation"],
    )
    for name, batcher in sorted(batchers.items()):
        sizes = batcher.sizes
        buckets = [(f"{b}.0", sum(n for s, n in sizes.items() if s <= b)) for b in BATCH_BUCKETS]
        buckets.append(("+Inf", sum(sizes.values())))
        family.add_metric([name], buckets, sum(s * n for s, n in sizes.items()))
    return family


class AppMetrics:
    """A registry of its own (several app servers may share a process, as in tests)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._requests = Counter(
            "shillings_app_requests",
            "Requests answered, by command and status code",
            ["command", "status"],
            registry=self.registry,
        )
        self._latency = Histogram(
            "shillings_app_request_duration_seconds",
            "Time from a request's arrival to its answer, by command",
            ["command"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._payments = Counter(
            "shillings_app_payments",
            "Payments made (PAY answered 200, replays of an idempotency key not counted)",
            registry=self.registry,
        )
        self._payment_cents = Counter(
            "shillings_app_payment_cents",
            "Cents moved by PAY requests answered 200",
            registry=self.registry,
        )
        self._topups = Counter(
            "shillings_app_topups",
            "Top-ups made (TPU answered 200, replays of an idempotency key not counted)",
            registry=self.registry,
        )
        self._topup_cents = Counter(
            "shillings_app_topup_cents",
            "Cents added by TPU requests answered 200",
            registry=self.registry,
        )
        self._refunds = Counter(
            "shillings_app_refunds",
            "Refunds made (RFD answered 201, replays of an idempotency key not counted)",
            registry=self.registry,
        )
        self._refund_cents = Counter(
            "shillings_app_refund_cents",
            "Cents given back by RFD requests answered 201",
            registry=self.registry,
        )
        self._holds = Counter(
            "shillings_app_holds",
            "Holds by what happened to them: created (HLD answered 201), captured (HLC 200),"
            " voided (HLV 200), expired (marked by the sweep); replays not counted",
            ["event"],
            registry=self.registry,
        )
        self._sweep_failures = Counter(
            "shillings_app_hold_sweep_failures",
            "Sweeps of expired holds that failed (logged as 'hold sweep failed'; holds still"
            " expire on time, their state and hold.expired events wait for the next sweep)",
            registry=self.registry,
        )
        self._hold_events = {
            pb.HLD: self._holds.labels("created"),
            pb.HLC: self._holds.labels("captured"),
            pb.HLV: self._holds.labels("voided"),
        }
        self._children: dict[tuple[str, int], tuple[Any, Any]] = {}

    def observe(
        self, command: str, request: pb.Request, response: pb.Response, seconds: float
    ) -> None:
        """Count one answered request (``command``: its name, from ``dispatch``); a replay
        of an idempotency key moved no money and is not counted as a payment or top-up."""
        status = response.status.code
        key = (command if command in COMMANDS else "other", status)
        children = self._children.get(key)
        if children is None:
            children = (
                self._requests.labels(key[0], str(status)),
                self._latency.labels(key[0]),
            )
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)
        if status not in (200, 201) or response.status.replayed:
            return
        hold_event = self._hold_events.get(request.command)
        if hold_event is not None:
            hold_event.inc()
        elif request.command == pb.RFD:
            self._refunds.inc()
            self._refund_cents.inc(response.refund.refund.amount)
        elif request.command == pb.PAY:
            self._payments.inc()
            self._payment_cents.inc(request.pay.amount)
        elif request.command == pb.TPU:
            self._topups.inc()
            self._topup_cents.inc(request.topup.amount)

    def holds_expired(self, count: int) -> None:
        """Count holds the sweep marked expired."""
        self._holds.labels("expired").inc(count)

    def hold_sweep_failed(self) -> None:
        self._sweep_failures.inc()

    def watch(self, server: Any) -> None:
        """Read ``server``'s (an ``AppServer``) connections, requests in progress and
        database pool when scraped; zeros while it is stopped."""

        def read() -> Iterator[Metric]:
            factory, db = server.factory, server.db
            yield gauge(
                "shillings_app_connections",
                "Open connections from web processes",
                len(factory.connections) if factory is not None else 0,
            )
            yield gauge(
                "shillings_app_in_flight",
                "Requests in progress",
                factory.in_flight if factory is not None else 0,
            )
            busy, size = db.pool_use() if db is not None else (0, 0)
            yield gauge(
                "shillings_app_db_pool_busy", "Database pool threads running a transaction", busy
            )
            yield gauge("shillings_app_db_pool_size", "Database pool threads at most", size)
            yield counts(
                "shillings_app_db_retries",
                "Database transactions run again, by cause: reconnect (connection lost),"
                " lock_conflict (deadlock or lock wait timeout), retry_transaction (lost race)",
                ["cause"],
                (([cause], server.db_retries[cause]) for cause in RETRY_CAUSES),
            )
            batchers = factory.ctx.batchers if factory is not None else {}
            yield batch_sizes(batchers)
            yield counts(
                "shillings_app_batch_conflict_splits",
                "Group-commit batches run again as two halves because every attempt hit a"
                " lock conflict, by operation",
                ["operation"],
                (([name], batcher.conflict_splits) for name, batcher in sorted(batchers.items())),
            )

        self.registry.register(StateCollector(read))
