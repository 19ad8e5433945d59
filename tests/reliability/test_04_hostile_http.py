"""Scenario 4, hostile HTTP input: property-based fuzzing of every endpoint through nginx,
and bodies of 10 MB through nginx and straight to a web process. Never a 5xx, never a
stack trace, never a balance changed by a refused request."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.reliability.api import PASSWORD, Stats, User, make_user, money
from tests.reliability.conftest import Shared
from tests.reliability.hostile import Raw, check_envelope, send_huge
from tests.reliability.ledger import Record, cents
from tests.reliability.load import size
from tests.reliability.report import COLLECTOR
from tests.stack.helpers import Client

pytestmark = pytest.mark.slow

SCENARIO = "4. Hostile HTTP input"
COLLECTOR.describe(SCENARIO, __doc__)
EXAMPLES = size(1500, 300)

SQL = [
    "' OR '1'='1",
    "'; DROP TABLE users; --",
    "1; UPDATE users SET balance = 100000000 --",
    '" OR 1=1 --',
    "x' UNION SELECT password FROM credentials --",
    "\\'; SELECT SLEEP(5); --",
    "admin'/*",
]
AMOUNTS = [
    "0",
    "0.00",
    "-1",
    "-0.01",
    "1.001",
    "0.005",
    "1e3",
    "1E2",
    "0x10",
    " 1.00",
    "1.00 ",
    "1,00",
    "\u0661\u0660",  # Arabic-Indic digits
    "NaN",
    "Infinity",
    "-Infinity",
    "1000000.01",
    "99999999999999999999",
    "",
    ".5",
    "5.",
    "+1.00",
    "1_000",
    "1.0.0",
    "\uff11\uff10",  # full-width digits
]
ENDPOINTS = [
    ("POST", "/v1/signup"),
    ("POST", "/v1/login"),
    ("POST", "/v1/logout"),
    ("GET", "/v1/account"),
    ("POST", "/v1/topup"),
    ("POST", "/v1/pay"),
    ("GET", "/v1/transactions"),
    ("GET", "/healthz"),
    ("PUT", "/v1/pay"),
    ("DELETE", "/v1/account"),
    ("PATCH", "/v1/topup"),
    ("GET", "/v1/pay"),
    ("POST", "/v1/../v1/pay"),
    ("POST", "/v1/pay/"),
    ("GET", "/v2/anything"),
]
FIELDS = [
    "amount",
    "receiver_email",
    "email",
    "password",
    "first_name",
    "middle_name",
    "last_name",
    "phone",
    "limit",
    "cursor",
]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=80),
    st.text(st.characters(min_codepoint=0x80), max_size=30),
    st.sampled_from(SQL + AMOUNTS),
    st.just("x" * 5000),
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=8,
)


@dataclass(frozen=True)
class Fuzz:
    shared: Shared
    payer: User
    receiver: User
    db: Any


@pytest.fixture(scope="module")
def fuzz(shared: Shared) -> Iterator[Fuzz]:
    payer = make_user(shared.stack.port, "fuzz-payer@example.com")
    receiver = make_user(shared.stack.port, "fuzz-receiver@example.com")
    client = Client(shared.stack.port)
    assert money(client, shared.ledger, shared.stats, payer, 100_000_000).status == 200
    client.close()
    db = shared.stack.db()
    try:
        yield Fuzz(shared, payer, receiver, db)
    finally:
        db.close()
    COLLECTOR.add(
        SCENARIO,
        fuzz_cases=fuzz_cases(),
        **{k: v for k, v in sorted(FUZZ_STATS.counts.items())},
    )


FUZZ_STATS = Stats()


def fuzz_cases() -> int:
    return FUZZ_STATS["cases"] + FUZZ_STATS["huge_bodies"]


@st.composite
def requests(draw: st.DrawFn, fuzz: Fuzz) -> tuple[str, str, bytes | None, dict[str, str]]:
    method, path = draw(st.sampled_from(ENDPOINTS))
    shape = draw(st.sampled_from(["money", "fields", "fields", "json", "text", "bytes", "none"]))
    obj: dict[str, Any] = {}
    body: bytes | None = None
    if shape == "money":  # a nearly valid pay or top-up, so some are accepted
        method, path = draw(st.sampled_from([("POST", "/v1/pay"), ("POST", "/v1/topup")]))
        good = st.integers(min_value=1, max_value=5000)
        obj = {
            "receiver_email": fuzz.receiver.email,
            "amount": draw(
                good.map(lambda c: f"{c // 100}.{c % 100:02d}")
                | good.map(lambda c: c // 100 + 1)
                | values
            ),
        }
        body = json.dumps(obj, default=str).encode()
        headers = {
            "Content-Type": "application/json",
            "Authorization": f"Bearer {fuzz.payer.token}",
        }
        if draw(st.booleans()):
            headers["Idempotency-Key"] = str(uuid.uuid4())
        return method, path, body, headers
    if shape == "fields":
        for name in draw(st.lists(st.sampled_from(FIELDS), max_size=6, unique=True)):
            obj[name] = draw(values)
        if path == "/v1/pay" and draw(st.booleans()):
            obj["receiver_email"] = draw(
                st.sampled_from(
                    [fuzz.receiver.email, fuzz.payer.email, fuzz.receiver.email.upper()]
                )
            )
        if draw(st.booleans()):
            obj["amount"] = draw(
                st.sampled_from(AMOUNTS)
                | st.decimals(allow_nan=False, allow_infinity=False, places=3).map(str)
                | st.integers(min_value=-5, max_value=10**20)
                | st.decimals(min_value=0, max_value=3, places=2).map(str)
            )
        body = json.dumps(obj, default=str).encode()
    elif shape == "json":
        body = json.dumps(draw(values), default=str).encode()
    elif shape == "text":
        body = draw(st.text(max_size=200)).encode("utf-8", "surrogatepass")
    elif shape == "bytes":
        body = draw(st.binary(max_size=300))
    headers = {}
    ctype = draw(
        st.sampled_from(
            [
                "application/json",
                "application/json; charset=latin-1",
                "text/plain",
                "",
                "multipart/form-data; boundary=x",
                "application/x-www-form-urlencoded",
                None,
            ]
        )
    )
    if ctype is not None:
        headers["Content-Type"] = ctype
    auth = draw(st.sampled_from(["bearer", "bearer", "cookie", "none", "garbage"]))
    if auth == "bearer":
        headers["Authorization"] = f"Bearer {fuzz.payer.token}"
    elif auth == "cookie":
        headers["Cookie"] = f"token={fuzz.payer.token}"
    elif auth == "garbage":
        headers["Authorization"] = draw(
            st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=60)
        ).strip()
    key = draw(
        st.none()
        | st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=300)
        | st.text(st.characters(min_codepoint=0xA0, max_codepoint=0xFF), min_size=1, max_size=5)
    )
    if key is not None:
        headers["Idempotency-Key"] = key
    if path == "/v1/transactions" and draw(st.booleans()):
        limit = quote(draw(st.text(max_size=12)))
        cursor = quote(draw(st.text(max_size=40)))
        path = f"{path}?limit={limit}&cursor={cursor}"
    return method, path, body, headers


def _balance(shared: Shared, user: User) -> int:
    return int(
        shared.stack.query("SELECT balance FROM users WHERE user_id = %s", (user.user_id,))[0][0]
    )


def _balances(fuzz: Fuzz) -> tuple[int, int]:
    with fuzz.db.cursor() as cur:
        cur.execute(
            "SELECT user_id, balance FROM users WHERE user_id IN (%s, %s)",
            (fuzz.payer.user_id, fuzz.receiver.user_id),
        )
        found = {int(u): int(b) for u, b in cur.fetchall()}
    return found[fuzz.payer.user_id], found[fuzz.receiver.user_id]


def _fuzz_one(fuzz: Fuzz, raw: Raw, request: tuple[str, str, bytes | None, dict[str, str]]) -> None:
    method, path, body, headers = request
    shared = fuzz.shared
    before = _balances(fuzz)
    status, answer, _ = raw.call(method, path, body, headers)
    FUZZ_STATS.add("cases")
    FUZZ_STATS.add(f"answered_{status}")
    document = check_envelope(status, answer, (PASSWORD, fuzz.payer.token[-20:]))
    after = _balances(fuzz)
    moved = status == 200 and method == "POST" and path in ("/v1/pay", "/v1/topup")
    if not moved:
        assert after == before, (status, document)
        return
    tx_id = document["transaction_id"]
    key = headers.get("Idempotency-Key")
    known = [r for r in shared.ledger.records if r.transaction_id == tx_id]
    if known:  # a replay of an earlier request with the same key: nothing moves
        assert after == before and known[0].key == key, (known, headers)
        return
    amount = before[0] - after[0] if path == "/v1/pay" else after[0] - before[0]
    assert amount > 0 and cents(document["balance"]) == after[0], document
    shared.ledger.add(
        Record(
            kind="payment" if path == "/v1/pay" else "topup",
            user_id=fuzz.payer.user_id,
            amount=amount,
            receiver_id=fuzz.receiver.user_id if path == "/v1/pay" else None,
            key=key,
            status=200,
            transaction_id=tx_id,
            balance=after[0],
        )
    )
    FUZZ_STATS.add("accepted_money_requests")


def test_fuzz_every_endpoint(fuzz: Fuzz) -> None:
    raw = Raw(fuzz.shared.stack.port)

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(request=requests(fuzz))
    def run(request: tuple[str, str, bytes | None, dict[str, str]]) -> None:
        _fuzz_one(fuzz, raw, request)

    try:
        run()
    finally:
        raw.close()
    assert FUZZ_STATS["cases"] >= EXAMPLES
    assert FUZZ_STATS["accepted_money_requests"] > 0, "the fuzzer never made a valid payment"
    fuzz.shared.check(SCENARIO)


BIG = 10 * 1024 * 1024


@pytest.mark.parametrize("target", ["nginx", "web process"])
@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_ten_megabyte_bodies_are_refused(fuzz: Fuzz, target: str, framing: str) -> None:
    stack = fuzz.shared.stack
    address: tuple[str, int] | str = ("127.0.0.1", stack.port)
    web_pid = stack.pid_of("web:web_00")
    if target == "web process":
        address = str(stack.var / "run" / "web_00.sock")
    before = _balance(fuzz.shared, fuzz.payer)
    piece = b'{"amount": "1.00", "pad": "' + b"x" * 65_000 + b'"}'
    count = BIG // len(piece) + 1
    if framing == "chunked":
        te = b"Transfer-Encoding: chunked\r\n"
        chunk = b"%x\r\n%s\r\n" % (len(piece), piece)
        tail = b"0\r\n\r\n"
    else:
        te = b"Content-Length: %d\r\n" % (count * len(piece),)
        chunk, tail = piece, b""
    head = (
        b"POST /v1/topup HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        + f"Authorization: Bearer {fuzz.payer.token}\r\n".encode()
        + f"Idempotency-Key: {uuid.uuid4()}\r\n".encode()
        + te
        + b"\r\n"
    )
    status, body = send_huge(address, head, count, chunk, tail)
    FUZZ_STATS.add("huge_bodies")
    assert status == 413, body[:300]
    check_envelope(status, body)
    assert _balance(fuzz.shared, fuzz.payer) == before
    assert stack.pid_of("web:web_00") == web_pid
    rss_kib = int(
        next(
            line.split()[1]
            for line in open(f"/proc/{web_pid}/status").read().splitlines()
            if line.startswith("VmRSS")
        )
    )
    assert rss_kib < 300 * 1024, f"web process holds {rss_kib} KiB after a 10 MB body"
    assert os.path.exists(stack.var / "run" / "web_00.sock")
