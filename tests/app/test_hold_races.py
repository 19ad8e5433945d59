"""Holds racing other money operations on the same payer: requests that read before another
one commits and lock after it must see what it reserved (available never below 0)."""

from __future__ import annotations

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
            client.call(
                messages.hold(payer.user_id, payer.token_id, merchant.email, 1_000, 0, key)
            )
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
