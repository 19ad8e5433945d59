"""Holds (and pays) racing other money operations on the same payer: requests that read
before another one commits and lock after it must see what it reserved (available never
below 0), and a keyed retry refused by what its own first attempt did replays that answer."""

from __future__ import annotations

import pytest
import pytest_twisted
from twisted.internet import defer, reactor

from tests import protocol_requests as messages
from tests.app.helpers import new_session, row_locked, sql
from tests.polling import poll_until


def _status(response) -> tuple[int, str]:
    return response.status.code, response.status.reason


def _waiting_for_users(dsn: str) -> int:
    """Statements waiting on the users' row locks (``money.lock_users``)."""
    return int(
        sql(
            dsn,
            "SELECT COUNT(*) FROM information_schema.processlist"
            " WHERE command = 'Query' AND info LIKE 'SELECT user_id, balance%%FOR UPDATE'",
        )[0][0]
    )


async def _released_together(app_server, payer_id: int, requests) -> list:
    """Send ``requests`` (Deferreds made by a callable) while the payer's row is locked
    elsewhere, wait until each has read and waits for that lock, release it, answer all."""
    with row_locked(app_server.dsn, payer_id):
        pending = requests()
        assert await poll_until(
            reactor, lambda: _waiting_for_users(app_server.dsn) == len(pending), 5.0
        )
    return list(await defer.gatherResults(pending))


@pytest_twisted.ensureDeferred
async def test_two_holds_for_all_of_available_exactly_one_is_placed(client, app_server):
    """Both read before either commits; the second to lock must count the first's hold
    (the sum of active holds is read current, not from the transaction's snapshot)."""
    payer = await new_session(client, "payer")
    merchant = await new_session(client, "merchant")
    await payer.topup(1_000)

    def requests():
        return [
            client.call(messages.hold(payer.user_id, payer.token_id, merchant.email, 1_000, 0, key))
            for key in ("h1", "h2")
        ]

    responses = await _released_together(app_server, payer.user_id, requests)
    assert sorted(_status(r) for r in responses) == [(201, ""), (422, "insufficient_funds")]
    user = (await payer.profile()).profile.user
    assert (user.balance, user.held, user.available) == (1_000, 1_000, 0)


@pytest_twisted.ensureDeferred
async def test_a_pay_racing_a_hold_cannot_spend_what_the_hold_reserved(client, app_server):
    payer = await new_session(client, "payer")
    merchant = await new_session(client, "merchant")
    await payer.topup(1_000)

    def requests():
        return [
            client.call(messages.hold(payer.user_id, payer.token_id, merchant.email, 1_000)),
            client.call(messages.pay(payer.user_id, payer.token_id, merchant.email, 1_000)),
        ]

    responses = await _released_together(app_server, payer.user_id, requests)
    assert sorted(r.status.code for r in responses) in ([200, 422], [201, 422])
    user = (await payer.profile()).profile.user
    assert user.available == 0 and user.balance - user.held == 0


@pytest_twisted.ensureDeferred
async def test_same_key_holds_racing_for_all_of_available_replay_one_hold(client, app_server):
    """Retries of one keyed hold that all read before the first commits: the later ones
    find the funds reserved, but by their own key's hold, so they replay it (201) rather
    than answer 422 insufficient_funds."""
    payer = await new_session(client, "payer")
    merchant = await new_session(client, "merchant")
    await payer.topup(1_000)

    def requests():
        request = messages.hold(payer.user_id, payer.token_id, merchant.email, 1_000, 0, "k")
        return [client.call(request) for _ in range(3)]

    responses = await _released_together(app_server, payer.user_id, requests)
    assert [_status(r) for r in responses] == [(201, "")] * 3
    assert len({r.hold.hold.hold_id for r in responses}) == 1
    assert (await payer.profile()).profile.user.available == 0


@pytest_twisted.ensureDeferred
@pytest.mark.parametrize("command", ["capture", "void"])
async def test_same_key_captures_or_voids_racing_replay_the_first(client, app_server, command):
    """Retries of one keyed capture (or void) that read before the first commits find the
    hold settled, by their own key: they replay its answer, not 409 hold_not_active."""
    payer = await new_session(client, "payer")
    merchant = await new_session(client, "merchant")
    await payer.topup(1_000)
    hold = await client.call(messages.hold(payer.user_id, payer.token_id, merchant.email, 600))
    hold_id = hold.hold.hold.hold_id

    def requests():
        if command == "capture":
            request = messages.capture(merchant.user_id, merchant.token_id, hold_id, 400, "c")
        else:
            request = messages.void(merchant.user_id, merchant.token_id, hold_id, "c")
        return [client.call(request) for _ in range(3)]

    responses = await _released_together(app_server, payer.user_id, requests)
    assert [_status(r) for r in responses] == [(200, "")] * 3
    answers = [r.capture if command == "capture" else r.void for r in responses]
    assert {a.hold.state for a in answers} == {"captured" if command == "capture" else "voided"}
    if command == "capture":
        assert len({r.capture.transaction_id for r in responses}) == 1
    user = (await payer.profile()).profile.user
    assert (user.balance, user.held) == ((600 if command == "capture" else 1_000), 0)


@pytest_twisted.ensureDeferred
async def test_same_key_pays_racing_for_all_of_available_replay_one_payment(client, app_server):
    payer = await new_session(client, "payer")
    merchant = await new_session(client, "merchant")
    await payer.topup(1_000)

    def requests():
        request = messages.pay(payer.user_id, payer.token_id, merchant.email, 1_000, "p")
        return [client.call(request) for _ in range(3)]

    responses = await _released_together(app_server, payer.user_id, requests)
    assert [_status(r) for r in responses] == [(200, "")] * 3
    assert len({r.pay.transaction_id for r in responses}) == 1
    assert await payer.balance() == 0


@pytest_twisted.ensureDeferred
async def test_a_topup_does_not_wait_for_the_payers_holds(client, app_server):
    """A top-up spends nothing, so its batch does not read (share-lock) the user's holds:
    it goes through while another transaction holds the user's hold row, which a pay must
    wait for (it sums the holds current under its lock)."""
    payer = await new_session(client, "payer")
    merchant = await new_session(client, "merchant")
    await payer.topup(1_000)
    placed = await client.call(messages.hold(payer.user_id, payer.token_id, merchant.email, 300))
    assert placed.status.code == 201
    holds_of_payer = "SELECT state FROM holds WHERE payer_id = %s"
    with row_locked(app_server.dsn, payer.user_id, holds_of_payer):
        topped = await payer.topup(500)
        assert topped.status.code == 200 and topped.topup.balance == 1_500
        pay = client.call(messages.pay(payer.user_id, payer.token_id, merchant.email, 100))
        assert await poll_until(reactor, lambda: _waiting_for_users(app_server.dsn) == 1, 2.0)
        assert not pay.called
    assert (await pay).status.code == 200
    user = (await payer.profile()).profile.user
    assert (user.balance, user.held, user.available) == (1_400, 300, 1_100)
