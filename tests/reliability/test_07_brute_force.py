"""Scenario 7, brute force: 100 wrong passwords for one email get 429 once the limit is
reached, whichever web process answers; the email stays locked from other addresses."""

from __future__ import annotations

import json
import re
import time

import pytest

from tests.reliability.api import PASSWORD, make_user
from tests.reliability.conftest import Shared
from tests.reliability.hostile import Raw, check_envelope
from tests.reliability.report import COLLECTOR

pytestmark = pytest.mark.slow

SCENARIO = "7. Brute force on one email"
COLLECTOR.describe(SCENARIO, __doc__)
LIMIT = 10  # SHILLINGS_LOGIN_MAX_FAILURES default
ATTEMPTS = 100


def _login(raw: Raw, email: str, password: str, rid: str) -> tuple[int, str, str | None]:
    body = json.dumps({"email": email, "password": password}).encode()
    status, answer, response = raw.call(
        "POST", "/v1/login", body, {"Content-Type": "application/json", "X-Request-Id": rid}
    )
    document = check_envelope(status, answer, (password,))
    return status, document["status"].get("reason", ""), response.getheader("Retry-After")


def test_brute_force_is_limited_across_web_processes(shared: Shared) -> None:
    stack = shared.stack
    target = make_user(stack.port, "brute-target@example.com")
    bystander = make_user(stack.port, "brute-bystander@example.com")
    attacker = Raw(stack.port, source="127.0.0.2")  # its own address: its own IP counter
    outcomes = [
        _login(attacker, target.email, f"wrong-password-{n}", f"bf-{n}") for n in range(ATTEMPTS)
    ]
    right_from_attacker = _login(attacker, target.email, PASSWORD, "bf-right")
    attacker.close()
    elsewhere = Raw(stack.port, source="127.0.0.3")
    right_from_elsewhere = _login(elsewhere, target.email, PASSWORD, "bf-elsewhere")
    bystander_login = _login(elsewhere, bystander.email, PASSWORD, "bf-bystander")
    elsewhere.close()

    statuses = [status for status, _, _ in outcomes]
    deadline = time.monotonic() + 10  # the request log reaches its file a little later
    while True:
        per_process = {
            n: set(re.findall(r"POST /v1/login 429 \S+ rid=(bf-\d+)", stack.log_text(f"web_0{n}")))
            for n in range(2)
        }
        if len(per_process[0] | per_process[1]) >= ATTEMPTS - LIMIT or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    COLLECTOR.add(
        SCENARIO,
        wrong_passwords_sent=ATTEMPTS,
        answered_401=statuses.count(401),
        answered_429=statuses.count(429),
        answers_429_by_web_process=" / ".join(str(len(ids)) for ids in per_process.values()),
        fuzz_cases=ATTEMPTS,
    )
    assert outcomes[:LIMIT] == [(401, "invalid_credentials", None)] * LIMIT
    assert all(
        (status, reason) == (429, "too_many_attempts") and retry and int(retry) > 0
        for status, reason, retry in outcomes[LIMIT:]
    ), outcomes[LIMIT:]
    assert right_from_attacker[:2] == (429, "too_many_attempts")
    assert right_from_elsewhere[:2] == (429, "too_many_attempts")
    assert bystander_login[0] == 200
    assert per_process[0] and per_process[1], "429s did not come from both web processes"
    assert len(per_process[0] | per_process[1]) == ATTEMPTS - LIMIT
    shared.check(SCENARIO)
