"""The requests of the holds-and-refunds storm (scenario 17): pay, top-up and every POST of
SPEC §6, each with its own Idempotency-Key, recorded as an ``Op`` with its final outcome.

A request whose outcome is unknown (broken connection, a 5xx that does not say "no effect")
is retried with the same key until answered. A 503 that says the request had no effect is
final unless an earlier attempt's outcome was unknown: the op is recorded as ``no_effect``
(the checks then prove it left nothing) and the client waits out the ``Retry-After``.
"""

from __future__ import annotations

import http.client
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from tests.reliability.api import Stats, User, fmt
from tests.reliability.ledger import cents
from tests.stack.helpers import Client

RETRY_FOR_S = 120.0
"""How long an op whose outcome is unknown is retried with its key."""
NO_EFFECT = "no effect"
"""What the message of a 503 says when the request surely was not applied."""


@dataclass
class Op:
    """One request of the storm as its client saw it (after all its retries)."""

    kind: str  # pay, topup, hold, capture, void, refund
    user: User  # who asked: payer, the hold's receiver, the original's receiver
    amount: int | None = None  # cents asked; None: the default (whole hold, what remains)
    other: User | None = None  # the receiver of a pay or hold
    target: str | None = None  # hold_id of a capture or void, transaction_id of a refund
    expires_in: int | None = None  # seconds, holds only
    race: int | None = None  # ops launched together share a race number
    key: str = field(default_factory=lambda: uuid.uuid4().hex)
    status: int | None = None
    reason: str | None = None
    outcome: str = "unanswered"  # ok, refused, no_effect, unanswered
    transaction_id: str | None = None  # the row a pay, top-up, capture or refund made
    hold_id: str | None = None  # the hold made, captured or voided
    moved: int | None = None  # cents the answer says were held, captured or refunded
    attempts: int = 0

    @property
    def path(self) -> str:
        if self.kind in ("capture", "void"):
            return f"/v1/holds/{self.target}/{self.kind}"
        return {"pay": "/v1/pay", "topup": "/v1/topup", "hold": "/v1/holds"}.get(
            self.kind, "/v1/refunds"
        )

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {}
        if self.amount is not None:
            body["amount"] = fmt(self.amount)
        if self.other is not None:
            body["receiver_email"] = self.other.email
        if self.expires_in is not None:
            body["expires_in"] = self.expires_in
        if self.kind == "refund":
            body["transaction_id"] = self.target
        return body

    def settle(self, status: int, answer: dict[str, Any]) -> None:
        """Record a final answer (below 500) and what it says was done."""
        self.status = status
        self.reason = answer.get("status", {}).get("reason")
        if status >= 300:
            self.outcome = "refused"
            return
        self.outcome = "ok"
        if self.kind == "refund":
            refund = answer["refund"]
            self.transaction_id, self.moved = refund["transaction_id"], cents(refund["amount"])
            return
        hold = answer.get("hold") or {}
        self.transaction_id, self.hold_id = answer.get("transaction_id"), hold.get("hold_id")
        if self.kind == "hold":
            self.moved = cents(hold["amount"])
        elif self.kind == "capture":
            self.moved = cents(hold["captured_amount"])
        else:
            self.moved = self.amount


class Ops:
    """Every op of a run, shared by the client threads, with counters of what they saw."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.all: list[Op] = []
        self.stats = Stats()

    def send(self, client: Client, op: Op) -> Op:
        """POST ``op`` until it has a final outcome (or ``RETRY_FOR_S`` passed); record it."""
        headers = {"Idempotency-Key": op.key, "Authorization": f"Bearer {op.user.token}"}
        deadline = time.monotonic() + RETRY_FOR_S
        delay = 0.05
        uncertain = False  # an earlier attempt may have taken effect
        while True:
            op.attempts += 1
            try:
                status, answer, response = client.call("POST", op.path, op.body(), headers)
            except (OSError, http.client.HTTPException, ValueError):
                self.stats.add("connection_errors")
            else:
                self.stats.add(f"http_{status}")
                if status < 500:
                    op.settle(status, answer)
                    break
                if status == 503 and NO_EFFECT in answer.get("status", {}).get("message", ""):
                    pause = min(1.0, float(response.getheader("Retry-After") or 1))
                    time.sleep(pause)
                    if not uncertain:  # else only this attempt did nothing: ask again
                        op.status, op.reason, op.outcome = status, "unavailable", "no_effect"
                        break
            uncertain = True
            if time.monotonic() >= deadline:
                break
            self.stats.add("retries")
            time.sleep(delay)
            delay = min(delay * 2, 0.5)
        with self.lock:
            self.all.append(op)
        return op

    def race(self, clients: list[Client], ops: list[Op]) -> list[Op]:
        """Send ``ops`` at the same moment, each on its own client (a barrier releases them)."""
        barrier = threading.Barrier(len(ops))

        def go(n: int) -> None:
            barrier.wait(timeout=30)
            self.send(clients[n], ops[n])

        helpers = [threading.Thread(target=go, args=(n,)) for n in range(1, len(ops))]
        for thread in helpers:
            thread.start()
        go(0)
        for thread in helpers:
            thread.join(timeout=RETRY_FOR_S + 30)
        return ops

    def answered(self) -> int:
        with self.lock:
            return sum(1 for op in self.all if op.outcome != "unanswered")

    def wait(self, n: int, timeout: float = 60.0) -> None:
        """Until ``n`` more ops have a final outcome (AssertionError after ``timeout``)."""
        target = self.answered() + n
        deadline = time.monotonic() + timeout
        while self.answered() < target:
            assert time.monotonic() < deadline, f"no progress ({self.answered()} answered)"
            time.sleep(0.05)

    def tally(self) -> Counter[str]:
        """``<kind>_<outcome or reason>`` -> count, for the report."""
        with self.lock:
            return Counter(
                f"{op.kind}_{op.reason if op.outcome == 'refused' else op.outcome}"
                for op in self.all
            )
