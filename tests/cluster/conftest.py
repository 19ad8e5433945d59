"""One cluster for the whole package (starting one takes ~30 s: SST to two nodes)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.cluster.cluster import Cluster, start_cluster, stop_cluster
from tests.reliability.api import Stats
from tests.reliability.ledger import Ledger


@pytest.fixture(scope="package")
def cluster() -> Iterator[Cluster]:
    running = start_cluster()
    try:
        yield running
    finally:
        stop_cluster(running)


@pytest.fixture(scope="package")
def ledger() -> Ledger:
    """Every money request any test sends to the cluster (the storm reconciles them all)."""
    return Ledger()


@pytest.fixture(scope="package")
def stats() -> Stats:
    return Stats()


def pytest_sessionstart(session: pytest.Session) -> None:
    from tests.cluster import figures
    from tests.reliability.report import commit

    figures.RUN["commit"] = commit()  # the code that runs, whatever is committed meanwhile


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    from tests.cluster import figures

    if report.when == "call" or (report.when == "setup" and not report.passed):
        figures.OUTCOMES[report.nodeid.split("::", 1)[-1]] = report.outcome


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    from tests.cluster import figures

    if figures.FIGURES:
        terminalreporter.write_sep("=", "cluster figures")
        terminalreporter.write_line(figures.write())
