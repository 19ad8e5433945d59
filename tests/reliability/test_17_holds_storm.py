"""Scenario 17, holds and refunds under fire: 64 concurrent clients, 8 users, 3,000 steps
(about 3,500 requests) mixing pays, top-ups, holds (a third expiring after 1 s, during the
run; the sweep marks them every second), captures (full and partial), voids and refunds
(full and partial), with races launched together (two refunds of 60 % of one payment; a
capture against a void or a second capture of one hold), while an app server and then
MariaDB are killed with kill -9. Clients retry a request whose outcome is unknown with its
Idempotency-Key; a 503 saying "no effect" is final (unless an earlier attempt's outcome was
unknown). Afterwards, from the rows: the sum of balances equals the sum of top-ups and
`shillings-app reconcile` exits 0; no `available` is negative at the end (GET /v1/account
and SQL) nor at any moment of a replay of each user's history: every ledger row at its
`created_at`, each hold reserving its amount from its `created_at` until its capture row,
its void (`updated_at`) or its `expires_at`. Every change is stamped while its users' rows
are locked, so a user's stamps order their changes as they happened; what the replay
cannot see is the moment a request read the clock for the expiry (ties within a
microsecond replay releases first). No hold has two captures or a capture stamped after
its expiry, a voided or expired hold none; the refunds of a payment never sum above it and
equal its `refunded_amount`; every success answered exists as asked under its key, every
refusal and "no effect" 503 left nothing, and every row, hold and void is explained by
exactly one answered success."""

from __future__ import annotations

import itertools
import random
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import pytest

from tests.reliability import holds_ledger
from tests.reliability.api import User, make_user
from tests.reliability.holds_ops import Op, Ops
from tests.reliability.ledger import cents
from tests.reliability.load import size
from tests.reliability.report import COLLECTOR
from tests.reliability.stack import Stack, start_stack, stop_stack
from tests.stack.helpers import ROOT, Client

pytestmark = pytest.mark.slow

SCENARIO = "17. Holds and refunds: storm with kill -9 of an app server and MariaDB"
COLLECTOR.describe(SCENARIO, __doc__)
USERS = 8
CLIENTS = 64
OPS = size(3_000, 1_500)
SHORT_S = 1
"""expires_in of the short holds (the stack's SHILLINGS_HOLD_MIN_EXPIRES_IN allows it)."""
LONG_S = 3_600
START_CENTS = 5_000
IMPOSSIBLE = 90_000_000  # more than all the money in the system
VICTIMS = (("app:app_00", 0.25), ("mariadb", 0.55))
"""What is killed, once this share of the ops has been answered."""
LAST: dict[str, Any] = {}
"""The storm's ops and rows, for the test that the checks are not vacuous."""


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    running = start_stack(
        web_procs=2,
        app_procs=2,
        SHILLINGS_HOLD_MIN_EXPIRES_IN=str(SHORT_S),
        SHILLINGS_HOLD_SWEEP_INTERVAL="1",
    )
    try:
        yield running
    finally:
        stop_stack(running)


class Storm:
    """The clients' shared state: users, ops sent, open holds and refundable rows."""

    def __init__(self, users: list[User], ops: Ops) -> None:
        self.users, self.ops = users, ops
        self.lock = threading.Lock()
        self.left = OPS
        self.open_holds: list[Op] = []
        self.refundable: list[Op] = []  # pays and captures answered 200
        self.races = itertools.count(1)

    def take(self) -> bool:
        with self.lock:
            self.left -= 1
            return self.left >= 0

    def stop(self) -> None:
        with self.lock:
            self.left = 0

    def amount(self, rng: random.Random) -> int:
        return IMPOSSIBLE if rng.random() < 0.03 else rng.randint(1, 3000)

    def step(self, rng: random.Random, clients: list[Client]) -> None:
        roll = rng.random()
        if roll < 0.22:
            self.pay(rng, clients[0])
        elif roll < 0.28:
            self.ops.send(clients[0], Op("topup", rng.choice(self.users), rng.randint(500, 3000)))
        elif roll < 0.50:
            self.hold(rng, clients[0])
        elif roll < 0.72:
            self.finish(rng, clients[0])
        elif roll < 0.92:
            self.refund(rng, clients[0])
        elif roll < 0.96:
            self.race_refunds(rng, clients)
        else:
            self.race_hold(rng, clients)

    def pay(self, rng: random.Random, client: Client, amount: int | None = None) -> Op:
        payer, receiver = rng.sample(self.users, 2)
        op = self.ops.send(client, Op("pay", payer, amount or self.amount(rng), other=receiver))
        if op.outcome == "ok":
            with self.lock:
                self.refundable.append(op)
        return op

    def hold(self, rng: random.Random, client: Client, *, for_race: bool = False) -> Op:
        """A new hold (a third of them short); kept for ``finish`` unless ``for_race``."""
        payer, receiver = rng.sample(self.users, 2)
        expires_in = LONG_S if for_race or rng.random() >= 0.35 else SHORT_S
        op = Op("hold", payer, self.amount(rng), other=receiver, expires_in=expires_in)
        self.ops.send(client, op)
        if op.outcome == "ok" and not for_race:
            with self.lock:
                self.open_holds.append(op)
        return op

    def finisher(self, rng: random.Random, hold: Op, kind: str | None = None) -> Op:
        """A capture (full or partial) or a void of ``hold`` by its receiver."""
        assert hold.other is not None and hold.moved is not None
        kind = kind or rng.choice(("capture", "capture", "partial", "void"))
        amount = rng.randint(1, hold.moved) if kind == "partial" else None
        return Op("void" if kind == "void" else "capture", hold.other, amount, target=hold.hold_id)

    def finish(self, rng: random.Random, client: Client) -> None:
        with self.lock:
            hold = (
                self.open_holds.pop(rng.randrange(len(self.open_holds)))
                if self.open_holds
                else None
            )
        if hold is None:
            self.hold(rng, client)
            return
        self._captured(self.ops.send(client, self.finisher(rng, hold)))

    def _captured(self, op: Op) -> None:
        if op.kind == "capture" and op.outcome == "ok":
            with self.lock:
                self.refundable.append(op)

    def refund(self, rng: random.Random, client: Client) -> None:
        with self.lock:
            original = rng.choice(self.refundable) if self.refundable else None
        if original is None:
            self.pay(rng, client)
            return
        receiver = original.other if original.kind == "pay" else original.user
        assert receiver is not None and original.moved is not None
        amount = None if rng.random() < 0.4 else rng.randint(1, original.moved)
        self.ops.send(client, Op("refund", receiver, amount, target=original.transaction_id))

    def race_refunds(self, rng: random.Random, clients: list[Client]) -> None:
        """Two refunds of 60 % of a fresh payment at the same moment: one at most wins."""
        paid = self.pay(rng, clients[0], rng.randint(500, 3000))
        if paid.outcome != "ok":
            return
        assert paid.other is not None and paid.amount is not None
        race, share = next(self.races), paid.amount * 60 // 100
        pair = [Op("refund", paid.other, share, target=paid.transaction_id, race=race)]
        pair.append(Op("refund", paid.other, share, target=paid.transaction_id, race=race))
        self.ops.race(clients, pair)

    def race_hold(self, rng: random.Random, clients: list[Client]) -> None:
        """A capture against a void, or against another capture, of one hold."""
        hold = self.hold(rng, clients[0], for_race=True)
        if hold.outcome != "ok":
            return
        race = next(self.races)
        second = rng.choice(("void", "capture", "partial"))
        pair = [self.finisher(rng, hold, "capture"), self.finisher(rng, hold, second)]
        for op in pair:
            op.race = race
        for op in self.ops.race(clients, pair):
            self._captured(op)


def test_holds_and_refunds_storm_under_kill9(stack: Stack) -> None:
    ops = Ops()
    with ThreadPoolExecutor(4) as pool:
        users = list(
            pool.map(lambda n: make_user(stack.port, f"holds{n:02d}@example.com"), range(USERS))
        )
    seed = Client(stack.port)
    for user in users:
        assert ops.send(seed, Op("topup", user, START_CENTS)).outcome == "ok"
    seed.close()
    storm = Storm(users, ops)

    def client_loop(n: int) -> None:
        rng = random.Random(1700 + n)
        clients = [Client(stack.port, timeout=60) for _ in range(2)]
        try:
            while storm.take():
                storm.step(rng, clients)
        finally:
            for client in clients:
                client.close()

    threads = [threading.Thread(target=client_loop, args=(n,)) for n in range(CLIENTS)]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    downtime = {}
    try:
        for victim, share in VICTIMS:
            ops.wait(max(1, int(OPS * share) - ops.answered()))
            killed_at = time.monotonic()
            old, new = stack.kill9(victim)
            stack.wait_healthy(90)
            downtime[victim.split(":")[-1]] = round(time.monotonic() - killed_at, 1)
            assert new != old
            ops.wait(50)
    except BaseException:
        storm.stop()
        raise
    finally:
        for thread in threads:
            thread.join(timeout=300)
    elapsed = time.monotonic() - began
    assert not any(thread.is_alive() for thread in threads)
    time.sleep(SHORT_S + 0.5)  # every short hold is past its expiry: held is stable now

    rows = holds_ledger.load(stack)
    LAST.update(ops=ops.all, rows=rows)

    replay_problems, lowest = holds_ledger.replay_available(rows)
    problems = {
        "holds": holds_ledger.check_holds(rows),
        "refunds": holds_ledger.check_refunds(rows),
        "replay": replay_problems,
        "answers": holds_ledger.check_ops(ops.all, rows),
        "accounts": _check_accounts(stack, users, rows),
    }
    reconciled = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "shillings-app"), "reconcile"],
        env=stack.env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    _record(ops, rows, downtime, elapsed, lowest, problems)

    stats = ops.stats
    outcomes = Counter(op.outcome for op in ops.all)
    races = _races(ops.all)
    assert outcomes["unanswered"] == 0, [op for op in ops.all if op.outcome == "unanswered"]
    assert sum(stats[f"http_{c}"] for c in (500, 501, 502, 504)) == 0, stats.counts
    assert reconciled.returncode == 0, reconciled.stdout + reconciled.stderr
    for name, found in problems.items():
        assert not found, f"{name}:\n" + "\n".join(found[:40])
    assert races["double_wins"] == 0
    assert races["refund_races_one_winner"] > 0 and races["hold_races_one_winner"] > 0
    tally = ops.tally()
    for needed in ("hold_ok", "capture_ok", "void_ok", "refund_ok", "capture_hold_not_active"):
        assert tally[needed] > 0, tally
    assert tally["refund_refund_exceeds_payment"] > 0, tally
    assert sum(1 for h in rows.holds.values() if h.state == "expired") > 0, "no sweep ran"
    assert any(op.attempts > 1 or op.outcome == "no_effect" for op in ops.all), (
        "no request was hit by a kill"
    )


def test_the_checks_catch_broken_holds_refunds_and_answers() -> None:
    """The checks are not vacuous: the storm's own rows, each broken in one way, are flagged
    (a second capture, a capture after expiry, a refund beyond its payment, a hold that
    would make ``available`` negative, a void nobody was answered, a refusal with an effect)."""
    assert LAST, "runs after test_holds_and_refunds_storm_under_kill9"
    rows: holds_ledger.Rows = LAST["rows"]
    ops: list[Op] = LAST["ops"]
    capture = next(tx for tx in rows.txs if tx.kind == "capture")
    hold = rows.holds[str(capture.hold_id)]
    twice = replace(capture, id=10**9 + 1, transaction_id="second-capture")
    late = replace(capture, created_at=hold.expires_at + 0.001)
    original = next(tx for tx in rows.txs if tx.kind == "payment" and tx.refunded_amount)
    assert original.sender_id is not None
    beyond = replace(original, id=10**9, transaction_id="over", kind="refund", refunded_amount=0)
    beyond = replace(beyond, sender_id=original.receiver_id, receiver_id=original.sender_id)
    beyond = replace(beyond, refund_of=original.transaction_id)
    user = max(rows.balances, key=lambda u: rows.balances[u])
    greedy = replace(hold, hold_id="greedy", payer_id=user, state="held", created_at=rows.now)
    greedy = replace(greedy, expires_at=rows.now + 60, amount=rows.balances[user] + 1)
    active = next(h for h in rows.holds.values() if h.state == "held")
    refused = next(op for op in ops if op.outcome == "refused" and op.kind == "pay")

    def broken(**changes: Any) -> holds_ledger.Rows:
        return replace(rows, **changes)

    def problems(changed: holds_ledger.Rows) -> str:
        found = holds_ledger.check_holds(changed) + holds_ledger.check_refunds(changed)
        found += holds_ledger.replay_available(changed)[0] + holds_ledger.check_ops(ops, changed)
        return "\n".join(found)

    assert problems(rows) == ""
    assert "captured 2 times" in problems(broken(txs=[*rows.txs, twice]))
    late_txs = [late if tx is capture else tx for tx in rows.txs]
    assert "after its hold expired" in problems(broken(txs=late_txs))
    text = problems(broken(txs=[*rows.txs, beyond]))
    assert f"{original.transaction_id} of {original.amount} refunded" in text
    assert "row no answered request explains" in text
    assert f"user {user}: available -" in problems(broken(holds={**rows.holds, "greedy": greedy}))
    voided = {**rows.holds, active.hold_id: replace(active, state="voided")}
    assert "voided without a void answered 200" in problems(broken(holds=voided))
    stolen = {**rows.keys, (refused.user.user_id, refused.key): (capture.transaction_id, None)}
    assert "refused pay left an effect" in problems(broken(keys=stolen))


def _check_accounts(stack: Stack, users: list[User], rows: holds_ledger.Rows) -> list[str]:
    """GET /v1/account of every user agrees with the rows, and no ``available`` is < 0."""
    held = holds_ledger.active_held(rows)
    problems = []
    for user in users:
        client = Client(stack.port, user.token)
        status, body, _ = client.call("GET", "/v1/account")
        client.close()
        if status != 200:
            problems.append(f"GET /v1/account of {user.email}: {status} {body}")
            continue
        shown = {k: cents(body["user"][k]) for k in ("balance", "held", "available")}
        sql = rows.balances[user.user_id], held.get(user.user_id, 0)
        if (shown["balance"], shown["held"]) != sql or shown["available"] != sql[0] - sql[1]:
            problems.append(f"{user.email}: account says {shown}, rows {sql}")
        if shown["available"] < 0 or sql[0] - sql[1] < 0:
            problems.append(f"{user.email}: available below zero: {shown}, rows {sql}")
    return problems


def _races(all_ops: list[Op]) -> Counter[str]:
    by_race: dict[int, list[Op]] = {}
    for op in all_ops:
        if op.race is not None:
            by_race.setdefault(op.race, []).append(op)
    found: Counter[str] = Counter()
    for pair in by_race.values():
        wins = sum(1 for op in pair if op.outcome == "ok")
        kind = "refund" if pair[0].kind == "refund" else "hold"
        found[f"{kind}_races"] += 1
        if wins == 1:
            found[f"{kind}_races_one_winner"] += 1
        elif wins > 1:
            found["double_wins"] += 1
    return found


def _record(
    ops: Ops,
    rows: holds_ledger.Rows,
    downtime: dict[str, float],
    elapsed: float,
    lowest: dict[int, int],
    problems: dict[str, list[str]],
) -> None:
    stats, tally, races = ops.stats, ops.tally(), _races(ops.all)
    states = Counter(hold.state for hold in rows.holds.values())
    topups = sum(tx.amount for tx in rows.txs if tx.kind == "topup")
    COLLECTOR.add(
        SCENARIO,
        users=USERS,
        concurrent_clients=CLIENTS,
        operations_sent=len(ops.all),
        kills=len(downtime),
        **{f"seconds_until_healthy_after_killing_{v}": s for v, s in downtime.items()},
        payments_made=tally["pay_ok"],
        topups_made=tally["topup_ok"],
        **{f"ops_{name}": n for name, n in sorted(tally.items())},
        **{name: n for name, n in sorted(races.items())},
        **{f"holds_{state}": n for state, n in sorted(states.items())},
        refunds_rows=sum(1 for tx in rows.txs if tx.kind == "refund"),
        lowest_available_in_replay=min(lowest.values(), default=0),
        requests_retried=sum(1 for op in ops.all if op.attempts > 1),
        answers_503_no_effect=sum(1 for op in ops.all if op.outcome == "no_effect"),
        connection_errors_then_retried=stats["connection_errors"],
        unexpected_5xx=sum(stats[f"http_{c}"] for c in (500, 501, 502, 504)),
        unanswered_after_retries=sum(1 for op in ops.all if op.outcome == "unanswered"),
        seconds=round(elapsed, 1),
        cents_lost=abs(sum(rows.balances.values()) - topups),
        invariant_violations=sum(len(found) for found in problems.values()),
    )
