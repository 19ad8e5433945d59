"""The cluster's webhook delivery workers: started with it, all on Galera node 3 (their
SKIP LOCKED claims lock rows of one node only), each serving its metrics and writing its
own log; an event committed by an app server on node 1 or 2 reaches a receiver, verified."""

from __future__ import annotations

import time
import urllib.request
from typing import Any

import pytest_twisted
from twisted.internet import reactor
from twisted.internet.threads import deferToThread

from tests.cluster.cluster import Cluster
from tests.hooks.receiver import Receiver
from tests.reliability.api import Stats, make_user, money
from tests.reliability.ledger import Ledger
from tests.stack.helpers import Client

WORKERS = (0, 1)
SUCCESSES = 'shillings_hooks_attempts_total{result="success"}'


def _metric(cluster: Cluster, n: int, sample: str) -> float:
    """Worker ``n``'s value of the sample line starting with ``sample``."""
    url = f"http://127.0.0.1:{cluster.hooks_metrics_port(n)}/metrics"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=5) as response:
        text = response.read().decode()
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(sample))


def _until_more(cluster: Cluster, before: float, within: float = 30.0) -> None:
    """Until the workers' successful attempts together exceed ``before`` (bounded)."""
    deadline = time.monotonic() + within
    while sum(_metric(cluster, n, SUCCESSES) for n in WORKERS) <= before:
        assert time.monotonic() < deadline, "no successful attempt counted by the workers"
        time.sleep(0.1)


def test_workers_run_on_node_3_and_status_checks_them(cluster: Cluster) -> None:
    programs = (cluster.var / "etc" / "programs.conf").read_text()
    assert programs.count(f'SHILLINGS_MYSQL_DSN="{cluster.dsn(3)}"') == len(WORKERS)
    workers = {cluster.pid_of(f"hooks:hooks_{n:02d}") for n in WORKERS}
    # Each polls its node, its pool kept open. A test before this one may have cut node 3
    # off: a worker's failed ROLLBACK there closed its connection, reopened by its next
    # step, at most its error pause (1 s) plus a poll later; so wait for it, bounded.
    deadline = time.monotonic() + 15
    while not workers <= cluster.client_pids(3) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert workers <= cluster.client_pids(3)
    assert not workers & (cluster.client_pids(1) | cluster.client_pids(2))
    status = cluster.run("status")
    assert status.returncode == 0, status.stdout + status.stderr
    for n in WORKERS:
        (line,) = [x for x in status.stdout.splitlines() if x.startswith(f"hooks:hooks_{n:02d}")]
        assert "RUNNING" in line, line
        port = cluster.hooks_metrics_port(n)
        assert f"hooks_{n:02d} metrics (127.0.0.1:{port}/metrics): 200" in status.stdout
    for name in ("app_00", "app_01", *(f"hooks_{n:02d}" for n in WORKERS)):
        # Each process writes its own log; supervisord relays nothing on the way.
        assert cluster.log_text(name).strip(), name
        assert (cluster.var / "log" / f"{name}.stdout.log").exists(), name


@pytest_twisted.ensureDeferred
async def test_an_event_reaches_a_receiver_through_the_workers(
    cluster: Cluster, ledger: Ledger, stats: Stats
) -> None:
    receiver = Receiver()
    await receiver.start(reactor)
    try:
        user = await deferToThread(make_user, cluster.port, "hooks-cluster@example.com")

        def register() -> str:
            client = Client(cluster.port, user.token)
            try:
                status, body, _ = client.call("POST", "/v1/webhooks", {"url": receiver.url("c")})
            finally:
                client.close()
            assert status == 201, body
            return str(body["webhook"]["secret"])

        endpoint = receiver.add("c", await deferToThread(register))
        sent = [await deferToThread(_metric, cluster, n, SUCCESSES) for n in WORKERS]

        def topup() -> str:
            client = Client(cluster.port)
            try:
                record = money(client, ledger, stats, user, 7_00, retry_for=30)
            finally:
                client.close()
            assert record.status == 200, record
            assert record.transaction_id is not None
            return record.transaction_id

        transaction_id = await deferToThread(topup)

        def topped_up() -> list[dict[str, Any]]:
            events = [got.event for got in endpoint.got]
            return [e for e in events if e["type"] == "topup.succeeded"]

        await receiver.until(lambda: bool(topped_up()), within=60)
        assert receiver.bad == []
        assert transaction_id in str(topped_up()[0]["data"]), topped_up()
        # The worker counts the attempt once the receiver's answer is read: wait for it.
        await deferToThread(_until_more, cluster, sum(sent))
    finally:
        await receiver.stop()
