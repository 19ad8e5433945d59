"""The event outbox's cost on payments, for bench/hooks.py: the pay ceiling
(bench/dbceiling.py) with and without its events insert, alternating, in pays/s and in CPU
per pay, with the delivery workers fanning the events out and with them stopped."""

from __future__ import annotations

import contextlib
import os
import statistics
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from bench import dbceiling
from bench.seed import connect
from bench.stackctl import Stack
from shillings_app.storage import events

THREADS = 16
ROUNDS = 5
"""Runs with and without events, each (the default of ``python -m bench --hooks-rounds``)."""


@contextlib.contextmanager
def outbox(enabled: bool) -> Iterator[None]:
    """Payments write their events (the app as it is), or not (the what-if baseline)."""
    emit, statement = events.emit, events.emit_statement
    if not enabled:
        events.emit = lambda *_args, **_kw: None  # type: ignore[assignment]
        events.emit_statement = lambda *_args, **_kw: None  # type: ignore[assignment]
    try:
        yield
    finally:
        events.emit, events.emit_statement = emit, statement  # type: ignore[assignment]


def cpu_now(stack: Stack) -> float:
    """CPU seconds so far of every process of the stack and of this one (the pay ceiling's
    client threads run the app's own transaction code, JSON of the events included)."""
    own = os.times()
    return sum(cpu for _, cpu in stack.cpu_seconds().values()) + own.user + own.system


def _alternate(
    stack: Stack,
    users_file: Path,
    seconds: float,
    log: Callable[[str], None],
    phase: str,
    rounds: int,
) -> dict[str, dict[str, list[float]]]:
    """Pays/s and CPU ms per pay of the pay ceiling with and without its events, ``rounds``
    runs each, alternating (so both see the same drift of the machine's other load). CPU
    per pay is the figure to trust on a shared machine: other load lowers pays/s, not it."""
    runs: dict[str, dict[str, list[float]]] = {
        name: {"rps": [], "cpu_ms": []} for name in ("with", "without")
    }
    for _ in range(rounds):
        for name, enabled in (("with", True), ("without", False)):
            before = cpu_now(stack)
            with outbox(enabled):
                point = dbceiling.run_pay_ceiling(
                    stack.mysql_socket, users_file, threads=THREADS, seconds=seconds
                )
            cpu_ms = round((cpu_now(stack) - before) * 1000 / max(point.requests, 1), 3)
            runs[name]["rps"].append(point.rps)
            runs[name]["cpu_ms"].append(cpu_ms)
            log(f"  pay ceiling, {phase}, {name} events: {point.rps} pays/s, {cpu_ms} CPU ms/pay")
    return runs


def slowdown(runs: dict[str, dict[str, list[float]]]) -> dict[str, Any]:
    """The runs, their medians with and without events, and the cost of the events in
    pays/s and in CPU per pay (percent)."""
    rps = {name: statistics.median(runs[name]["rps"]) for name in runs}
    cpu = {name: statistics.median(runs[name]["cpu_ms"]) for name in runs}
    return {
        "runs": runs,
        "with_events_rps": rps["with"],
        "without_events_rps": rps["without"],
        "slowdown_pct": round(100 * (1 - rps["with"] / rps["without"]), 1),
        "with_events_cpu_ms": cpu["with"],
        "without_events_cpu_ms": cpu["without"],
        "cpu_cost_pct": round(100 * (cpu["with"] / cpu["without"] - 1), 1),
    }


def outbox_cost(
    stack: Stack,
    ctl: Callable[..., None],
    users_file: Path,
    seconds: float,
    log: Callable[[str], None],
    rounds: int = ROUNDS,
) -> dict[str, Any]:
    """The slowdown as deployed (the delivery workers fan the events out meanwhile, on the
    same cores), and of the events insert alone (workers stopped); ``rounds`` runs of each."""
    deployed = _alternate(stack, users_file, seconds, log, "workers running", rounds)
    ctl("stop", "hooks:*")
    insert_only = _alternate(stack, users_file, seconds, log, "workers stopped", rounds)
    ctl("start", "hooks:*")
    wait_dispatched(stack)
    return {
        "threads": THREADS,
        "rounds": rounds,
        "deployed": slowdown(deployed),
        "insert_only": slowdown(insert_only),
    }


def wait_dispatched(stack: Stack, timeout: float = 300.0) -> None:
    """Until the workers have fanned out every event (no endpoint yet: none is delivered)."""
    deadline = time.monotonic() + timeout
    conn = connect(stack.mysql_socket)
    try:
        with conn.cursor() as cur:
            while True:
                cur.execute("SELECT COUNT(*) FROM events WHERE dispatched = 0")
                if cur.fetchone()[0] == 0:
                    return
                if time.monotonic() > deadline:
                    raise RuntimeError("the delivery workers did not fan the events out")
                time.sleep(0.2)
    finally:
        conn.close()
