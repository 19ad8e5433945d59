"""Scenario 11, lockout and bursts (issue 10 points 5-7), on a stack of its own with the
default limits (the other scenarios' stacks allow more signups): an attacker's 50 wrong
passwords never lock out the owner's device (OWASP device cookies); 15 simultaneous right
logins all succeed; 60 simultaneous wrong logins for 60 emails from one address reach the
password check exactly 10 times; 40 simultaneous signups from one address create exactly
10 accounts."""

from __future__ import annotations

import http.client
import json
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.reliability.api import PASSWORD, make_user
from tests.reliability.report import COLLECTOR
from tests.reliability.stack import Stack, start_stack, stop_stack

pytestmark = pytest.mark.slow

SCENARIO = "11. Lockout and bursts"
COLLECTOR.describe(SCENARIO, __doc__)
LIMIT = 10  # SHILLINGS_LOGIN_MAX_FAILURES and SHILLINGS_SIGNUP_MAX defaults


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    own = start_stack(web_procs=2, app_procs=1, SHILLINGS_SIGNUP_MAX=str(LIMIT))  # the default
    try:
        yield own
    finally:
        stop_stack(own)


def post(
    port: int, source: str, path: str, body: dict[str, Any], cookie: str | None = None
) -> tuple[int, dict[str, Any], list[str]]:
    """One POST from ``source`` (a loopback address: its own client IP behind Nginx)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30, source_address=(source, 0))
    headers = {"Content-Type": "application/json"}
    if cookie:
        headers["Cookie"] = cookie
    try:
        conn.request("POST", path, body=json.dumps(body).encode(), headers=headers)
        response = conn.getresponse()
        document = json.loads(response.read())
        return response.status, document, response.headers.get_all("Set-Cookie") or []
    finally:
        conn.close()


def device_cookie(set_cookies: list[str]) -> str:
    (device,) = [c for c in set_cookies if c.startswith("dev_")]
    return device.split(";", 1)[0]


def login(port: int, source: str, email: str, password: str, cookie: str | None = None) -> Any:
    return post(port, source, "/v1/login", {"email": email, "password": password}, cookie)


def at_once(calls: list[Any]) -> list[Any]:
    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(lambda call: call(), calls))


def test_an_attacker_never_locks_out_the_owners_device(stack: Stack) -> None:
    port = stack.port
    owner = make_user(port, "lockout-owner@example.com")
    status, _, cookies = login(port, "127.0.0.30", owner.email, PASSWORD)
    assert status == 200
    device = device_cookie(cookies)
    guesses = [login(port, "127.0.0.31", owner.email, f"wrong-{n}")[0] for n in range(50)]
    started = time.monotonic()
    with_device = login(port, "127.0.0.32", owner.email, PASSWORD, device)[0]
    owner_seconds = time.monotonic() - started
    without_device = login(port, "127.0.0.32", owner.email, PASSWORD)[0]
    COLLECTOR.add(
        SCENARIO,
        attacker_wrong_passwords=len(guesses),
        attacker_passwords_checked=guesses.count(401),
        owner_with_device_cookie=with_device,
        owner_login_seconds=round(owner_seconds, 3),
        new_client_without_device_cookie=without_device,
    )
    assert guesses == [401] * LIMIT + [429] * (50 - LIMIT)
    assert with_device == 200
    assert without_device == 429  # OWASP: clients that never logged in share the lockout


def test_simultaneous_right_logins_all_succeed(stack: Stack) -> None:
    port = stack.port
    owner = make_user(port, "lockout-busy@example.com")
    plain = at_once([lambda: login(port, "127.0.0.40", owner.email, PASSWORD)] * 15)
    device = device_cookie(plain[0][2])
    with_device = at_once([lambda: login(port, "127.0.0.41", owner.email, PASSWORD, device)] * 15)
    COLLECTOR.add(
        SCENARIO,
        simultaneous_right_logins=15,
        answered_200_without_device_cookie=[a[0] for a in plain].count(200),
        answered_200_with_device_cookie=[a[0] for a in with_device].count(200),
    )
    assert [a[0] for a in plain] == [200] * 15
    assert [a[0] for a in with_device] == [200] * 15


def test_a_burst_from_one_address_gets_exactly_the_limit(stack: Stack) -> None:
    port = stack.port
    answers = at_once(
        [
            lambda n=n: login(port, "127.0.0.50", f"lockout-nobody{n}@example.com", "wrong-pass")
            for n in range(60)
        ]
    )
    codes = Counter(a[0] for a in answers)
    COLLECTOR.add(
        SCENARIO,
        burst_wrong_logins_one_address=60,
        burst_passwords_checked=codes[401],
        burst_refused_429=codes[429],
    )
    assert codes == Counter({401: LIMIT, 429: 60 - LIMIT})


def test_signups_are_limited_per_address(stack: Stack) -> None:
    port = stack.port

    def signup(n: int) -> Any:
        body = {
            "first_name": "Burst",
            "last_name": "Signup",
            "email": f"lockout-signup{n}@example.com",
            "phone": "+15550001111",
            "password": PASSWORD,
        }
        return post(port, "127.0.0.60", "/v1/signup", body)

    answers = at_once([lambda n=n: signup(n) for n in range(40)])
    codes = Counter(a[0] for a in answers)
    elsewhere = post(
        port,
        "127.0.0.61",
        "/v1/signup",
        {
            "first_name": "Other",
            "last_name": "Address",
            "email": "lockout-elsewhere@example.com",
            "phone": "+15550001111",
            "password": PASSWORD,
        },
    )[0]
    created = stack.query("SELECT COUNT(*) FROM users WHERE email LIKE 'lockout-signup%%'")[0][0]
    COLLECTOR.add(
        SCENARIO,
        simultaneous_signups_one_address=40,
        signups_created=codes[201],
        signups_refused_429=codes[429],
        accounts_in_database=int(created),
    )
    assert codes == Counter({201: LIMIT, 429: 40 - LIMIT})
    assert int(created) == LIMIT
    assert {a[1]["status"]["reason"] for a in answers if a[0] == 429} == {"too_many_signups"}
    assert elsewhere == 201
