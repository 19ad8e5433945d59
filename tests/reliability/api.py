"""HTTP actions of the scenarios' clients: sign up, log in, and money requests that are
recorded in a ledger and, when asked, retried with the same Idempotency-Key."""

from __future__ import annotations

import base64
import http.client
import json
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from tests.reliability.ledger import Ledger, Record, cents
from tests.stack.helpers import Client

PASSWORD = "reliability-pass-1"


@dataclass
class Stats:
    """Thread-safe counters of what clients saw (statuses, connection errors, retries)."""

    counts: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, name: str, n: int = 1) -> None:
        with self.lock:
            self.counts[name] += n

    def __getitem__(self, name: str) -> int:
        with self.lock:
            return self.counts[name]


@dataclass(frozen=True)
class User:
    user_id: int
    email: str
    token: str


def token_id(token: str) -> str:
    """The ``jti`` claim of a JWT (read without verifying it)."""
    payload = token.split(".")[1]
    return str(json.loads(base64.urlsafe_b64decode(payload + "===")).get("jti"))


def cached(stack_redis: Any, user: User) -> bool:
    """Whether the Redis profile cache holds an entry for ``user``'s token."""
    return bool(stack_redis("EXISTS", f"shl:prof:{token_id(user.token)}") == b":1\r\n")


def fmt(amount: int) -> str:
    return f"{amount // 100}.{amount % 100:02d}"


def make_user(port: int, email: str, first: str = "Rel") -> User:
    """Sign up and log in ``email``; the user has balance 0."""
    client = Client(port)
    try:
        status, body, _ = client.call(
            "POST",
            "/v1/signup",
            {
                "first_name": first,
                "last_name": "Tester",
                "email": email,
                "phone": "+15550001111",
                "password": PASSWORD,
            },
        )
        assert status == 201, body
        status, body, _ = client.call("POST", "/v1/login", {"email": email, "password": PASSWORD})
        assert status == 200, body
        return User(int(body["user"]["user_id"]), email, body["token"])
    finally:
        client.close()


def money(
    client: Client,
    ledger: Ledger,
    stats: Stats,
    user: User,
    amount: int,
    receiver: User | None = None,
    *,
    retry_for: float = 0.0,
    key: str | None = None,
) -> Record:
    """POST /v1/pay (to ``receiver``) or /v1/topup with a fresh Idempotency-Key.

    With ``retry_for`` > 0 a 5xx or a broken connection is retried with the same key until
    answered or that many seconds have passed. The outcome is recorded in ``ledger``.
    """
    key = key or uuid.uuid4().hex
    kind = "payment" if receiver is not None else "topup"
    rec = Record(
        kind=kind,
        user_id=user.user_id,
        amount=amount,
        receiver_id=receiver.user_id if receiver else None,
        key=key,
    )
    path = "/v1/pay" if receiver else "/v1/topup"
    body: dict[str, Any] = {"amount": fmt(amount)}
    if receiver is not None:
        body["receiver_email"] = receiver.email
    headers = {"Idempotency-Key": key, "Authorization": f"Bearer {user.token}"}
    deadline = time.monotonic() + retry_for
    delay = 0.05
    while True:
        rec.attempts += 1
        sent = time.time()
        try:
            status, answer, _ = client.call("POST", path, body, headers)
        except (OSError, http.client.HTTPException, ValueError) as e:
            stats.add("connection_errors")
            rec.status, rec.reason = None, f"{e.__class__.__name__}: {e}"
        else:
            stats.add(f"http_{status}")
            if status >= 500:
                stats.add("5xx")
            rec.status, rec.reason = status, answer.get("status", {}).get("reason")
            rec.sent, rec.answered = sent, time.time()
            if status == 200:
                rec.transaction_id = answer["transaction_id"]
                rec.balance = cents(answer["balance"])
            if status < 500:
                break
        if time.monotonic() >= deadline:
            break
        stats.add("retries")
        time.sleep(delay)
        delay = min(delay * 2, 0.5)
    ledger.add(rec)
    return rec


class Progress:
    """The records of money requests that client threads made, shared between them; the
    test waits on it for more requests answered 200 (e.g. after a kill)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.records: list[Record] = []

    def add(self, record: Record) -> None:
        with self._lock:
            self.records.append(record)

    def answered(self) -> int:
        with self._lock:
            return sum(1 for r in self.records if r.status == 200)

    def wait(self, n: int, timeout: float = 60.0) -> None:
        """Until ``n`` more requests are answered 200 (AssertionError after ``timeout``)."""
        target = self.answered() + n
        deadline = time.monotonic() + timeout
        while self.answered() < target:
            assert time.monotonic() < deadline, f"no progress ({self.answered()} answered)"
            time.sleep(0.05)
