"""A refusal decided on the data is stored under the request's idempotency key and answered
again to a retry with that key and body (SPEC §2: same key, same body, same response),
even when the data changed since so that the request, judged afresh, would succeed."""

from __future__ import annotations

import pytest_twisted
from twisted.internet import defer

from shillings_app.storage.records import MAX_BALANCE
from tests import protocol_requests as messages
from tests.app.group_commit import _server
from tests.app.helpers import new_session, sql
from tests.app.test_webhooks import create, delete


def _status(response) -> tuple[int, str, str]:
    return response.status.code, response.status.reason, response.status.message


@pytest_twisted.ensureDeferred
async def test_a_refused_hold_is_refused_again_after_the_funds_came(client, app_server):
    payer = await new_session(client, "payer")
    merchant = await new_session(client, "merchant")
    request = messages.hold(payer.user_id, payer.token_id, merchant.email, 500, 0, "h-1")
    first = await client.call(request)
    assert _status(first) == (422, "insufficient_funds", "insufficient funds")
    assert (await payer.topup(1_000)).status.code == 200
    assert _status(await client.call(request)) == _status(first)
    assert sql(app_server.dsn, "SELECT COUNT(*) FROM holds") == [(0,)]
    fresh = messages.hold(payer.user_id, payer.token_id, merchant.email, 500, 0, "h-2")
    assert (await client.call(fresh)).status.code == 201


@pytest_twisted.ensureDeferred
async def test_a_capture_over_the_hold_is_refused_the_same_after_the_hold_was_voided(client):
    """The amount is checked against the hold, so its refusal is remembered: the retry
    does not turn into 409 hold_not_active once the hold is voided."""
    payer = await new_session(client, "payer")
    merchant = await new_session(client, "merchant")
    assert (await payer.topup(1_000)).status.code == 200
    placed = await client.call(messages.hold(payer.user_id, payer.token_id, merchant.email, 500))
    hold_id = placed.hold.hold.hold_id
    capture = messages.capture(merchant.user_id, merchant.token_id, hold_id, 501, "c-1")
    first = await client.call(capture)
    assert _status(first) == (400, "invalid_amount", "amount exceeds the hold's amount")
    void = messages.void(merchant.user_id, merchant.token_id, hold_id)
    assert (await client.call(void)).status.code == 200
    assert _status(await client.call(capture)) == _status(first)


@pytest_twisted.ensureDeferred
async def test_a_refused_topup_is_refused_again_after_the_balance_fell(client, app_server):
    rich = await new_session(client, "rich")
    other = await new_session(client, "other")
    assert (await rich.topup(100)).status.code == 200
    sql(app_server.dsn, "UPDATE users SET balance = %s WHERE user_id = %s",
        (MAX_BALANCE, rich.user_id))  # fmt: skip
    first = await rich.topup(1, key="t-1")
    assert first.status.reason == "balance_limit"
    assert (await rich.pay(other.email, 100)).status.code == 200
    assert _status(await rich.topup(1, key="t-1")) == _status(first)
    assert await rich.balance() == MAX_BALANCE - 100
    assert (await rich.topup(1, key="t-2")).status.code == 200


@pytest_twisted.ensureDeferred
async def test_a_refused_webhook_registration_is_refused_again_after_one_was_deleted(client):
    user = await new_session(client, "hooks")
    made = [await create(user, key=f"w-{n}") for n in range(5)]
    assert {r.status.code for r in made} == {201}
    sixth = await create(user, key="w-6")
    assert sixth.status.reason == "too_many_webhooks"
    assert (await delete(user, made[0].webhook_create.webhook.webhook_id)).status.code == 200
    assert _status(await create(user, key="w-6")) == _status(sixth)
    assert (await create(user, key="w-7")).status.code == 201


@pytest_twisted.ensureDeferred
async def test_duplicates_racing_a_topup_all_get_one_answer(connect, app_server):
    """Eight copies of one keyed payment the payer cannot afford, sent at once with the
    top-up that pays for it: whichever the first copy met, every copy answers the same and
    the money moves at most once."""
    clients = [await connect() for _ in range(9)]
    payer = await new_session(clients[0], "payer")
    payee = await new_session(clients[0], "payee")
    pay = messages.pay(payer.user_id, payer.token_id, payee.email, 700, "dup")
    answers = await defer.gatherResults(
        [defer.ensureDeferred(c.call(pay)) for c in clients[:8]]
        + [defer.ensureDeferred(payer.topup(700))]
    )
    copies = {(a.status.code, a.status.reason, a.pay.transaction_id) for a in answers[:8]}
    assert len(copies) == 1, copies
    ((code, reason, _),) = copies
    assert (code, reason) in {(200, ""), (422, "insufficient_funds")}
    assert await payee.balance() == (700 if code == 200 else 0)
    later = await clients[0].call(pay)
    assert (later.status.code, later.status.reason) == (code, reason)


@pytest_twisted.ensureDeferred
async def test_refusals_are_stored_when_each_statement_goes_alone(make_server):
    """On a Galera cluster (``db_sync_wait`` > 0) statements and COMMIT go one per round
    trip; a lone transaction's refusal must be committed there too. Before, the hold's
    refusal was rolled back with the transaction and its retry placed the hold."""
    async with _server(make_server, db_sync_wait=1) as (server, client):
        payer = await new_session(client, "payer")
        merchant = await new_session(client, "merchant")
        hold = messages.hold(payer.user_id, payer.token_id, merchant.email, 500, 0, "h-1")
        pay = messages.pay(payer.user_id, payer.token_id, merchant.email, 500, "p-1")
        refused = [await client.call(hold), await client.call(pay)]
        assert [r.status.reason for r in refused] == ["insufficient_funds"] * 2
        assert (await payer.topup(1_000)).status.code == 200
        again = [await client.call(hold), await client.call(pay)]
        assert [_status(r) for r in again] == [_status(r) for r in refused]
        assert sql(server.dsn, "SELECT COUNT(*) FROM holds") == [(0,)]
        assert await payer.balance() == 1_000
