"""Brute-force limits (issue 10 points 5-7): device cookies keep the owner in, bursts from one
address get exactly the limit of checks, signups are limited per address."""

from __future__ import annotations

import pytest_twisted
from twisted.internet import defer

from tests.web.conftest import PASSWORD, Answer, signup


def from_ip(ip: str, cookie: str | None = None) -> dict[str, str]:
    headers = {"X-Real-IP": ip}
    if cookie:
        headers["Cookie"] = cookie
    return headers


def device_cookie(answer: Answer) -> str:
    """``name=value`` of the device cookie a successful login set."""
    cookies = answer.headers.getRawHeaders("Set-Cookie")
    (device,) = [c for c in cookies if c.startswith("dev_")]
    attributes = [p.strip() for p in device.split(";")]
    assert {"HttpOnly", "Path=/v1/login", "SameSite=Strict"} <= set(attributes), device
    return attributes[0]


async def attempt(web, email: str, password: str, ip: str, cookie: str | None = None) -> Answer:
    body = {"email": email, "password": password}
    return await web.client.post("/v1/login", body, headers=from_ip(ip, cookie))


async def at_once(*calls) -> list[Answer]:
    return list(await defer.gatherResults([defer.ensureDeferred(c) for c in calls]))


@pytest_twisted.ensureDeferred
async def test_guesses_from_elsewhere_never_lock_out_a_device_that_logged_in_before(web_with):
    web = await web_with(login_max_failures=3, login_window=120, trust_proxy=True)
    await signup(web.client, "owner@example.com")
    first = await attempt(web, "owner@example.com", PASSWORD, "10.0.0.1")
    assert first.code == 200
    device = device_cookie(first)
    guesses = [
        await attempt(web, "owner@example.com", f"guess-{n}", f"10.9.0.{n}") for n in range(5)
    ]
    assert [g.code for g in guesses] == [401] * 3 + [429] * 2
    # A client without a device cookie is locked out (the email's lockout) ...
    stranger = await attempt(web, "owner@example.com", PASSWORD, "10.0.0.2")
    assert (stranger.code, stranger.reason) == (429, "too_many_attempts")
    # ... the owner's device is not, from any address, and gets a fresh cookie each time.
    again = await attempt(web, "owner@example.com", PASSWORD, "10.0.0.3", device)
    assert again.code == 200, again.raw
    assert device_cookie(again) != device
    # A device cookie proves nothing for another email, nor when tampered with.
    await signup(web.client, "other@example.com")
    for _ in range(3):
        await attempt(web, "other@example.com", "wrong-pass", "10.8.0.1")
    borrowed = "dev_0000000000000000=" + device.split("=", 1)[1]
    for cookie in (device, borrowed, device[:-2] + "xx"):
        answer = await attempt(web, "other@example.com", PASSWORD, "10.0.0.4", cookie)
        assert (answer.code, answer.reason) == (429, "too_many_attempts"), cookie
    tampered = device[:-2] + ("AA" if not device.endswith("AA") else "BB")
    answer = await attempt(web, "owner@example.com", PASSWORD, "10.0.0.5", tampered)
    assert (answer.code, answer.reason) == (429, "too_many_attempts")


@pytest_twisted.ensureDeferred
async def test_a_device_cookie_is_limited_per_device(web_with):
    """Guessing with a stolen device cookie is limited like any client; that device's lock
    does not spread to the owner's other devices."""
    web = await web_with(login_max_failures=3, login_window=120, trust_proxy=True)
    await signup(web.client, "dana@example.com")
    one = device_cookie(await attempt(web, "dana@example.com", PASSWORD, "10.0.1.1"))
    two = device_cookie(await attempt(web, "dana@example.com", PASSWORD, "10.0.1.2"))
    guesses = [
        await attempt(web, "dana@example.com", f"guess-{n}", f"10.0.2.{n}", one) for n in range(5)
    ]
    assert [g.code for g in guesses] == [401] * 3 + [429] * 2
    right = await attempt(web, "dana@example.com", PASSWORD, "10.0.2.9", one)
    assert right.code == 429
    assert (await attempt(web, "dana@example.com", PASSWORD, "10.0.1.2", two)).code == 200
    assert (await attempt(web, "dana@example.com", PASSWORD, "10.0.1.3")).code == 200


@pytest_twisted.ensureDeferred
async def test_concurrent_right_logins_of_one_owner_all_succeed(web_with):
    """15 logins at once with the right password (limit 10): the last ones wait for the
    first to finish instead of being refused, with or without a device cookie."""
    web = await web_with(trust_proxy=True)
    await signup(web.client, "busy@example.com")
    answers = await at_once(
        *(attempt(web, "busy@example.com", PASSWORD, "10.0.3.1") for _ in range(15))
    )
    assert [a.code for a in answers] == [200] * 15
    device = device_cookie(answers[0])
    answers = await at_once(
        *(attempt(web, "busy@example.com", PASSWORD, "10.0.3.2", device) for _ in range(15))
    )
    assert [a.code for a in answers] == [200] * 15


@pytest_twisted.ensureDeferred
async def test_a_burst_from_one_address_gets_exactly_the_limit_of_checks(web_with):
    """60 wrong logins at once for 60 different emails from one address: exactly 10 reach
    the password check (401), the rest are refused before it (429)."""
    web = await web_with(trust_proxy=True)
    answers = await at_once(
        *(attempt(web, f"nobody{n}@example.com", "wrong-pass", "10.0.4.1") for n in range(60))
    )
    codes = sorted(a.code for a in answers)
    assert codes == [401] * 10 + [429] * 50
    other = await attempt(web, "nobody0@example.com", "wrong-pass", "10.0.4.2")
    assert other.code == 401


@pytest_twisted.ensureDeferred
async def test_signups_are_limited_per_address(web_with):
    web = await web_with(signup_max=3, signup_window=600, trust_proxy=True)

    def body(n: int) -> dict[str, str]:
        return {
            "first_name": "S",
            "last_name": "U",
            "email": f"signup{n}@example.com",
            "phone": "+15550001111",
            "password": PASSWORD,
        }

    answers = await at_once(
        *(web.client.post("/v1/signup", body(n), headers=from_ip("10.0.5.1")) for n in range(8))
    )
    assert sorted(a.code for a in answers) == [201] * 3 + [429] * 5
    refused = [a for a in answers if a.code == 429]
    assert {a.reason for a in refused} == {"too_many_signups"}
    assert all(500 <= int(a.header("Retry-After") or 0) <= 600 for a in refused)
    # Invalid bodies are refused before the limit and do not count; other addresses sign up.
    invalid = await web.client.post("/v1/signup", {"email": "x"}, headers=from_ip("10.0.5.2"))
    assert invalid.code == 400
    answer = await web.client.post("/v1/signup", body(100), headers=from_ip("10.0.5.2"))
    assert answer.code == 201
