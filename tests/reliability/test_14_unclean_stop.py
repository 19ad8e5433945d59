"""Scenario 14, unclean stop: while clients pay and top up, supervisord and every process of
the stack are SIGKILLed at the same moment (as the OOM killer, `docker kill` or a host crash
do); the pids the stopped stack's lock links and pid files name are then given to live,
unrelated processes, as in a new container or after a reboot. `make start` must bring the
stack back healthy, by itself, five times in a row; clients retry with the same
Idempotency-Key until answered; nothing is lost or paid twice."""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Iterator

import pytest

from tests.reliability.api import Progress, Stats, make_user, money
from tests.reliability.ledger import Ledger, check_invariants, summary_text
from tests.reliability.load import size
from tests.reliability.report import COLLECTOR
from tests.reliability.stack import Stack, start_stack, stop_stack
from tests.stack.crash import kill_everything, reuse_pids, start_decoy
from tests.stack.helpers import Client

pytestmark = pytest.mark.slow

SCENARIO = "14. Unclean stop: SIGKILL of everything at once, then make start"
COLLECTOR.describe(SCENARIO, __doc__)
CYCLES = size(5, 2)
"""Both kinds of reused pid (this test's own, then init's) are met from two cycles on."""
USERS = 8
CLIENTS = 4


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    running = start_stack(web_procs=2, app_procs=2)
    try:
        yield running
    finally:
        stop_stack(running)


def test_start_recovers_after_sigkill_of_everything(stack: Stack) -> None:
    ledger, stats = Ledger(), Stats()
    users = [make_user(stack.port, f"unclean{n:02d}@example.com") for n in range(USERS)]
    seed = Client(stack.port)
    for user in users:
        assert money(seed, ledger, stats, user, 50_000).status == 200
    seed.close()

    stop = threading.Event()
    progress = Progress()
    records = progress.records

    def client_loop(n: int) -> None:
        rng = random.Random(n)
        client = Client(stack.port, timeout=30)
        try:
            while not stop.is_set():
                payer, receiver = rng.sample(users, 2)
                to = receiver if rng.random() < 0.8 else None
                rec = money(client, ledger, stats, payer, rng.randint(1, 500), to, retry_for=180)
                progress.add(rec)
        finally:
            client.close()

    decoy = start_decoy(stack.var)
    threads = [threading.Thread(target=client_loop, args=(n,)) for n in range(CLIENTS)]
    for thread in threads:
        thread.start()
    recovery_seconds: list[float] = []
    processes_killed = 0
    try:
        for cycle in range(CYCLES):
            progress.wait(30)
            processes_killed += len(kill_everything(stack.var, stack.env))
            # pid 1 (init) and this test's own pid: both live, neither is ours any more.
            changed = reuse_pids(stack.var, 1 if cycle % 2 else os.getpid(), decoy.pid)
            assert sum(name.endswith(".lock") for name in changed) == 4  # app x2, web x2
            began = time.monotonic()
            started = stack.make("start", timeout=180)
            recovery_seconds.append(time.monotonic() - began)
            assert started.returncode == 0, started.stdout + started.stderr
            assert "removed leftovers of an unclean stop" in started.stdout
            stack.wait_all_web_ready(30)
        progress.wait(30)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=240)
        decoy.kill()
        decoy.wait()
    assert not any(thread.is_alive() for thread in threads)

    unanswered = [r for r in records if r.status is None or r.status >= 500]
    outcomes = {(r.status, r.reason) for r in records}
    summary = check_invariants(stack, ledger)
    COLLECTOR.add(
        SCENARIO,
        unclean_stop_cycles=CYCLES,
        processes_sigkilled=processes_killed,
        seconds_until_healthy_max=round(max(recovery_seconds), 1),
        seconds_until_healthy_mean=round(sum(recovery_seconds) / len(recovery_seconds), 1),
        concurrent_clients=CLIENTS,
        requests_retried_across_a_stop=sum(1 for r in records if r.attempts > 1),
        payments_made=sum(1 for r in records if r.kind == "payment" and r.status == 200),
        topups_made=sum(1 for r in records if r.kind == "topup" and r.status == 200) + USERS,
        unanswered_after_retries=len(unanswered),
        cents_lost=summary.cents_lost,
        invariant_violations=len(summary.problems),
    )
    assert unanswered == []
    assert outcomes <= {(200, None), (422, "insufficient_funds")}, outcomes
    assert sum(1 for r in records if r.attempts > 1) > 0, "no request was caught by a stop"
    assert not summary.problems, summary_text(summary)
