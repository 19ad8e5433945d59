"""The stack shared by the reliability scenarios (one per package run) and the report."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from tests.reliability.api import Stats, make_user
from tests.reliability.ledger import Ledger, Summary, check_invariants, summary_text
from tests.reliability.report import COLLECTOR, REPORT_ENV
from tests.reliability.stack import Stack, start_stack, stop_stack
from tests.stack.helpers import Client

APP_IDLE_TIMEOUT_S = 2
"""The app servers drop a peer stalled mid-frame after this long (SHILLINGS_APP_IDLE_TIMEOUT)."""


@dataclass
class Shared:
    """A running stack with the ledger and counters of every client that used it."""

    stack: Stack
    ledger: Ledger = field(default_factory=Ledger)
    stats: Stats = field(default_factory=Stats)

    def check(self, scenario: str) -> Summary:
        """Assert every invariant; record the check's figures for the report."""
        summary = check_invariants(self.stack, self.ledger)
        COLLECTOR.add(
            scenario, cents_lost=summary.cents_lost, invariant_violations=len(summary.problems)
        )
        assert not summary.problems, summary_text(summary)
        return summary


@pytest.fixture(scope="package")
def shared() -> Iterator[Shared]:
    stack = start_stack(
        web_procs=2, app_procs=2, SHILLINGS_APP_IDLE_TIMEOUT=str(APP_IDLE_TIMEOUT_S)
    )
    try:
        version = stack.query("SELECT VERSION()")[0][0]
        COLLECTOR.facts["MariaDB"] = str(version).split("-")[0]
        COLLECTOR.facts.update(_versions())
        # A first profile read starts the cache's epoch (and its grace period) right away.
        user = make_user(stack.port, "warm-up@example.com")
        client = Client(stack.port, user.token)
        assert client.call("GET", "/v1/account")[0] == 200
        client.close()
        yield Shared(stack)
    finally:
        stop_stack(stack)


def _versions() -> dict[str, str]:
    found = {}
    for name, argv, pattern in (
        ("nginx", ["nginx", "-v"], r"nginx/([\d.]+)"),
        ("Redis", ["redis-server", "--version"], r"v=([\d.]+)"),
    ):
        try:
            out = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
        except OSError:
            continue
        match = re.search(pattern, out.stdout + out.stderr)
        if match:
            found[name] = match.group(1)
    return found


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if "tests/reliability/" not in report.nodeid:
        return
    if report.when == "call" or (report.when == "setup" and not report.passed):
        outcome: str = report.outcome
        if hasattr(report, "wasxfail"):
            outcome = "xfail: known bug" if report.skipped else "xpass (bug not hit this run)"
            COLLECTOR.known[report.nodeid] = str(report.wasxfail)
        COLLECTOR.outcomes[report.nodeid] = (outcome, report.duration)


def pytest_sessionfinish(session: pytest.Session) -> None:
    path = os.environ.get(REPORT_ENV)
    if path and COLLECTOR.outcomes:
        written = COLLECTOR.write(path)
        print(f"\nreliability report written to {written}")
