"""Scenario 10, Redis under pressure (issue 10 points 3-4): 2,000 pays to receivers that do
not exist leave no key behind; Redis filled to its maxmemory with keys that have a TTL
(cache pressure) evicts nothing: a locked email stays locked, logins fail closed (503,
no password checked) while Redis refuses writes, /healthz says so, money still moves with
no stale balance; an email that cannot be encoded does not switch the cache off."""

from __future__ import annotations

import re
import subprocess
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.reliability.api import PASSWORD, cached, fmt, make_user, money
from tests.reliability.conftest import Shared
from tests.reliability.report import COLLECTOR
from tests.reliability.stack import Stack
from tests.reliability.test_11_lockout import login
from tests.stack.helpers import Client

pytestmark = pytest.mark.slow

SCENARIO = "10. Redis under pressure"
COLLECTOR.describe(SCENARIO, __doc__)
LIMIT = 10
PAYS = 2000
JUNK_VALUE = "x" * 1000
JUNK_KEYS = 3000


def redis_cli(stack: Stack, commands: list[str]) -> list[str]:
    """Send ``commands`` (one per line) to the stack's Redis; one answer line each."""
    out = subprocess.run(
        ["redis-cli", "-s", str(stack.var / "run" / "redis.sock")],
        input="\n".join(commands) + "\n",
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return out.stdout.splitlines()


def keys_without_ttl(stack: Stack) -> list[str]:
    keys = redis_cli(stack, ["KEYS *"])
    ttls = redis_cli(stack, [f"TTL {k}" for k in keys]) if keys else []
    return [k for k, ttl in zip(keys, ttls, strict=True) if int(ttl) < 0]


def test_pays_to_unknown_receivers_leave_no_key(shared: Shared) -> None:
    stack = shared.stack
    payer = make_user(stack.port, "pressure-payer@example.com")
    before = int(redis_cli(stack, ["DBSIZE"])[0])

    def pays(start: int) -> list[int]:
        client = Client(stack.port, payer.token)
        try:
            return [
                client.call("POST", "/v1/pay", {"receiver_email": f"ghost{n}@x.co", "amount": 1})[0]
                for n in range(start, PAYS, 4)
            ]
        finally:
            client.close()

    with ThreadPoolExecutor(4) as pool:
        statuses = [s for batch in pool.map(pays, range(4)) for s in batch]
    after = int(redis_cli(stack, ["DBSIZE"])[0])
    immortal = keys_without_ttl(stack)
    COLLECTOR.add(
        SCENARIO,
        pays_to_unknown_receivers=len(statuses),
        answered_404=statuses.count(404),
        redis_keys_before=before,
        redis_keys_after=after,
        keys_without_ttl=", ".join(immortal) or "-",
    )
    assert statuses == [404] * PAYS
    assert after - before < 10
    assert set(immortal) <= {"shl:epoch"}


def test_a_full_redis_keeps_the_lock_and_fails_closed(shared: Shared) -> None:
    stack = shared.stack
    port = stack.port
    target = make_user(port, "pressure-target@example.com")
    payer = make_user(port, "pressure-a@example.com")
    receiver = make_user(port, "pressure-b@example.com")
    money(Client(port), shared.ledger, shared.stats, payer, 1000)
    guesses = [login(port, "127.0.0.70", target.email, f"wrong-{n}")[0] for n in range(LIMIT + 1)]
    assert guesses == [401] * LIMIT + [429]
    junk = 0
    try:
        for start in range(0, JUNK_KEYS, 500):  # cache pressure: keys with a TTL
            answers = redis_cli(
                stack, [f"SET junk:{n} {JUNK_VALUE} EX 600" for n in range(start, start + 500)]
            )
            junk += answers.count("OK")
        info = "\n".join(redis_cli(stack, ["INFO memory"]))
        used = int(re.search(r"used_memory:(\d+)", info)[1])  # type: ignore[index]
        redis_cli(stack, [f"CONFIG SET maxmemory {used - 512 * 1024}"])  # full
        junk_left = int(
            redis_cli(stack, ["EXISTS " + " ".join(f"junk:{n}" for n in range(junk))])[0]
        )
        while_full = [
            login(port, "127.0.0.71", f"pressure-other{n}@example.com", "wrong-pass")[0]
            for n in range(25)
        ]
        right_while_full = login(port, "127.0.0.72", payer.email, PASSWORD)[0]
        health = Client(port)
        status, body, _ = health.call("GET", "/healthz")
        health.close()
        per_process = stack.web_health()
        client = Client(port, payer.token)
        paid = money(client, shared.ledger, shared.stats, payer, 300, receiver)
        read = client.call("GET", "/v1/account")
        client.close()
    finally:
        for start in range(0, junk, 1000):
            redis_cli(stack, [f"DEL {' '.join(f'junk:{n}' for n in range(start, start + 1000))}"])
        redis_cli(stack, ["CONFIG SET maxmemory 256mb"])
    still_locked = login(port, "127.0.0.73", target.email, PASSWORD)[0]
    stack.wait_all_web_ready(30)
    COLLECTOR.add(
        SCENARIO,
        junk_keys_with_ttl_stored=junk,
        junk_keys_evicted_when_full=junk - junk_left,
        wrong_passwords_while_full=len(while_full),
        passwords_checked_while_full=while_full.count(401),
        answers_while_full=" / ".join(f"{c}: {n}" for c, n in sorted(Counter(while_full).items())),
        healthz_while_full=f"{status} redis={body.get('checks', {}).get('redis')}",
        pay_while_full=paid.status,
        locked_email_after_pressure=still_locked,
    )
    assert junk_left == junk
    assert while_full == [503] * 25
    assert right_while_full == 503
    assert (status, body["checks"]["redis"]) == (503, "refusing_writes")
    assert set(per_process.values()) == {503}
    assert paid.status == 200
    assert read[0] == 200 and read[1]["user"]["balance"] == fmt(700)
    assert still_locked == 429
    shared.check(SCENARIO)


def test_an_unencodable_email_does_not_switch_the_cache_off(shared: Shared) -> None:
    stack = shared.stack
    user = make_user(stack.port, "pressure-cache@example.com")
    logs = "".join(stack.log_text(f"web_0{n}") for n in range(2))
    flaps_before = len(re.findall("unavailable \\(|reachable again", logs))
    client = Client(stack.port, user.token)
    status = client.call(
        "POST", "/v1/pay", {"receiver_email": "\ud800x@example.com", "amount": "1.00"}
    )[0]
    deadline = time.monotonic() + 20
    while not cached(stack.redis, user):
        assert time.monotonic() < deadline, "the cache was never used again"
        assert client.call("GET", "/v1/account")[0] == 200
        time.sleep(0.2)
    time.sleep(1.5)
    client.close()
    logs = "".join(stack.log_text(f"web_0{n}") for n in range(2))
    flaps = len(re.findall("unavailable \\(|reachable again", logs)) - flaps_before
    COLLECTOR.add(SCENARIO, pay_to_unencodable_email=status, redis_log_flaps_after_it=flaps)
    assert flaps == 0
