"""Holds through the protocol against a real app server and MariaDB: create, capture, void,
list, every error reason, exact expiry without the sweep, races, idempotent replays."""

from __future__ import annotations

import json

import pytest_twisted
from twisted.internet import defer

from tests import protocol_requests as messages
from tests.app.helpers import new_session, sql


def _status(response) -> tuple[int, str]:
    return response.status.code, response.status.reason


async def _pair(client, funds: int = 10_000):
    payer = await new_session(client, "payer")
    merchant = await new_session(client, "merchant")
    if funds:
        assert (await payer.topup(funds)).status.code == 200
    return payer, merchant


async def _hold(client, payer, merchant, amount: int, **kw):
    return await client.call(
        messages.hold(payer.user_id, payer.token_id, merchant.email, amount, **kw)
    )


async def _capture(client, merchant, hold_id: str, amount: int = 0, key: str = ""):
    return await client.call(
        messages.capture(merchant.user_id, merchant.token_id, hold_id, amount, key)
    )


async def _void(client, who, hold_id: str, key: str = ""):
    return await client.call(messages.void(who.user_id, who.token_id, hold_id, key))


async def _user(session):
    response = await session.profile()
    assert response.status.code == 200
    return response.profile.user


def _counted(app_server, event: str) -> float:
    value = app_server.metrics.registry.get_sample_value(
        "shillings_app_holds_total", {"event": event}
    )
    return value or 0.0


def _events(dsn: str, hold_id: str) -> list[tuple[int, str]]:
    rows = sql(dsn, "SELECT user_id, type, data FROM events WHERE type LIKE 'hold.%%' ORDER BY id")
    return [(int(u), t) for u, t, d in rows if json.loads(d)["hold_id"] == hold_id]


@pytest_twisted.ensureDeferred
async def test_create_reserves_available_and_tells_both_users(client, app_server):
    payer, merchant = await _pair(client)
    response = await _hold(client, payer, merchant, 2500, expires_in=3600)
    assert _status(response) == (201, "")
    hold = response.hold.hold
    assert response.hold.available == 7500
    assert (hold.payer_email, hold.receiver_email) == (payer.email, merchant.email)
    assert (hold.amount, hold.captured_amount, hold.state) == (2500, 0, "held")
    user = await _user(payer)
    assert (user.balance, user.held, user.available) == (10_000, 2500, 7500)
    assert user.next_hold_expiry_ms > 0
    assert _events(app_server.dsn, hold.hold_id) == [
        (payer.user_id, "hold.created"),
        (merchant.user_id, "hold.created"),
    ]
    # Pay spends available only.
    paid = await payer.pay(merchant.email, 7501)
    assert _status(paid) == (422, "insufficient_funds")


@pytest_twisted.ensureDeferred
async def test_create_errors(client, app_server):
    payer, merchant = await _pair(client, funds=1000)
    cases = [
        (dict(amount=1001), (422, "insufficient_funds")),
        (dict(amount=0), (400, "invalid_amount")),
        (dict(amount=100, expires_in=59), (400, "invalid_request")),
        (dict(amount=100, expires_in=2_592_001), (400, "invalid_request")),
    ]
    for kw, expected in cases:
        amount = kw.pop("amount")
        assert _status(await _hold(client, payer, merchant, amount, **kw)) == expected, kw
    nobody = await client.call(
        messages.hold(payer.user_id, payer.token_id, "nobody@example.com", 100)
    )
    assert _status(nobody) == (404, "receiver_not_found")
    itself = await client.call(messages.hold(payer.user_id, payer.token_id, payer.email, 100))
    assert _status(itself) == (422, "self_payment")
    assert sql(app_server.dsn, "SELECT COUNT(*) FROM holds")[0][0] == 0
    default = await _hold(client, payer, merchant, 100)
    hold = default.hold.hold
    assert hold.expires_at > hold.created_at
    assert sql(
        app_server.dsn,
        "SELECT TIMESTAMPDIFF(SECOND, created_at, expires_at) FROM holds WHERE hold_id = %s",
        (hold.hold_id,),
    ) == [(604_800,)]


@pytest_twisted.ensureDeferred
async def test_partial_capture_moves_that_part_and_releases_the_rest(client, app_server):
    payer, merchant = await _pair(client)
    hold = (await _hold(client, payer, merchant, 4000)).hold.hold
    response = await _capture(client, merchant, hold.hold_id, 1500)
    assert _status(response) == (200, "")
    captured = response.capture.hold
    assert (captured.state, captured.captured_amount, captured.amount) == ("captured", 1500, 4000)
    assert not hold.HasField("capture_transaction_id")
    assert captured.capture_transaction_id == response.capture.transaction_id
    payer_user, merchant_user = await _user(payer), await _user(merchant)
    assert (payer_user.balance, payer_user.held, payer_user.available) == (8500, 0, 8500)
    assert merchant_user.balance == 1500
    rows = sql(
        app_server.dsn,
        "SELECT kind, sender_id, receiver_id, amount, hold_id FROM transactions"
        " WHERE transaction_id = %s",
        (response.capture.transaction_id,),
    )
    assert rows == [("capture", payer.user_id, merchant.user_id, 1500, hold.hold_id)]
    assert _events(app_server.dsn, hold.hold_id)[2:] == [
        (payer.user_id, "hold.captured"),
        (merchant.user_id, "hold.captured"),
    ]
    datas = [
        json.loads(d)
        for t, d in sql(app_server.dsn, "SELECT type, data FROM events WHERE type LIKE 'hold.%%'")
        if json.loads(d)["hold_id"] == hold.hold_id
    ]
    assert [d["capture_transaction_id"] for d in datas] == [None, None] + [
        response.capture.transaction_id
    ] * 2
    again = await _capture(client, merchant, hold.hold_id)
    assert _status(again) == (409, "hold_not_active")


@pytest_twisted.ensureDeferred
async def test_capture_and_void_errors(client, app_server):
    payer, merchant = await _pair(client)
    hold = (await _hold(client, payer, merchant, 1000)).hold.hold
    # Only the receiver may capture or void; the payer is told it does not exist.
    assert _status(await _capture(client, payer, hold.hold_id)) == (404, "hold_not_found")
    assert _status(await _void(client, payer, hold.hold_id)) == (404, "hold_not_found")
    unknown = "00000000-0000-4000-8000-000000000000"
    assert _status(await _capture(client, merchant, unknown)) == (404, "hold_not_found")
    assert _status(await _void(client, merchant, "not-a-uuid")) == (404, "hold_not_found")
    too_much = await _capture(client, merchant, hold.hold_id, 1001)
    assert _status(too_much) == (400, "invalid_amount")
    voided = await _void(client, merchant, hold.hold_id)
    assert _status(voided) == (200, "") and voided.void.hold.state == "voided"
    assert (await _user(payer)).available == 10_000
    assert _status(await _capture(client, merchant, hold.hold_id)) == (409, "hold_not_active")
    assert _status(await _void(client, merchant, hold.hold_id)) == (409, "hold_not_active")
    assert _events(app_server.dsn, hold.hold_id)[2:] == [
        (payer.user_id, "hold.voided"),
        (merchant.user_id, "hold.voided"),
    ]


@pytest_twisted.ensureDeferred
async def test_capture_over_the_receivers_balance_limit_is_422(client, app_server):
    payer, merchant = await _pair(client)
    hold = (await _hold(client, payer, merchant, 1000)).hold.hold
    sql(app_server.dsn, "UPDATE users SET balance = %s WHERE user_id = %s",
        (10**15 - 999, merchant.user_id))  # fmt: skip
    assert _status(await _capture(client, merchant, hold.hold_id)) == (422, "balance_limit")
    assert (await _user(payer)).held == 1000


@pytest_twisted.ensureDeferred
async def test_expiry_is_exact_without_the_sweep(client, app_server):
    payer, merchant = await _pair(client)
    hold = (await _hold(client, payer, merchant, 3000)).hold.hold
    # One millisecond ago: the sweep has not run, the state still says held.
    sql(
        app_server.dsn,
        "UPDATE holds SET expires_at = UTC_TIMESTAMP(6) - INTERVAL 1000 MICROSECOND"
        " WHERE hold_id = %s",
        (hold.hold_id,),
    )
    assert _status(await _capture(client, merchant, hold.hold_id)) == (409, "hold_not_active")
    assert _status(await _void(client, merchant, hold.hold_id)) == (409, "hold_not_active")
    user = await _user(payer)
    assert (user.held, user.available, user.next_hold_expiry_ms) == (0, 10_000, 0)
    listed = await client.call(messages.holds(payer.user_id, payer.token_id))
    assert [h.state for h in listed.holds.holds] == ["expired"]
    assert sql(app_server.dsn, "SELECT state FROM holds") == [("held",)]


@pytest_twisted.ensureDeferred
async def test_two_captures_racing_exactly_one_wins(client, app_server):
    payer, merchant = await _pair(client)
    for _ in range(3):
        hold = (await _hold(client, payer, merchant, 1000)).hold.hold
        answers = await defer.gatherResults(
            [
                defer.ensureDeferred(_capture(client, merchant, hold.hold_id, 600)),
                defer.ensureDeferred(_capture(client, merchant, hold.hold_id, 700)),
                defer.ensureDeferred(_void(client, merchant, hold.hold_id)),
            ]
        )
        codes = sorted(_status(a) for a in answers)
        assert codes[0][0] == 200 and codes[1:] == [(409, "hold_not_active")] * 2, codes
    rows = sql(
        app_server.dsn,
        "SELECT h.hold_id, h.state, h.captured_amount, COUNT(t.id), COALESCE(SUM(t.amount), 0)"
        " FROM holds h LEFT JOIN transactions t ON t.hold_id = h.hold_id GROUP BY h.id",
    )
    for _, state, captured, count, total in rows:
        assert (count, total) == ((1, captured) if state == "captured" else (0, 0))
    payer_user, merchant_user = await _user(payer), await _user(merchant)
    assert payer_user.balance + merchant_user.balance == 10_000


@pytest_twisted.ensureDeferred
async def test_idempotent_replays_answer_what_the_first_answer_said(client, app_server):
    payer, merchant = await _pair(client)
    first = await _hold(client, payer, merchant, 2000, idempotency_key="h-1")
    hold_id = first.hold.hold.hold_id
    captured = await _capture(client, merchant, hold_id, 500, key="c-1")
    assert _status(captured) == (200, "")
    # The create replayed after the capture still answers the hold as created.
    again = await _hold(client, payer, merchant, 2000, idempotency_key="h-1")
    assert (again.status.code, again.status.replayed) == (201, True)
    assert again.hold == first.hold
    capture_again = await _capture(client, merchant, hold_id, 500, key="c-1")
    assert capture_again.status.replayed and capture_again.capture == captured.capture
    assert captured.capture.hold.capture_transaction_id == captured.capture.transaction_id
    other = await _hold(client, payer, merchant, 2001, idempotency_key="h-1")
    assert _status(other) == (422, "idempotency_key_reused")
    other_capture = await _capture(client, merchant, hold_id, 400, key="c-1")
    assert _status(other_capture) == (422, "idempotency_key_reused")
    # Replays are not counted as holds created or captured.
    assert _counted(app_server, "created") == 1 and _counted(app_server, "captured") == 1
    assert sql(app_server.dsn, "SELECT COUNT(*) FROM holds")[0][0] == 1
    assert sql(app_server.dsn, "SELECT COUNT(*) FROM transactions WHERE kind = 'capture'") == [(1,)]
    # Pay keys still work beside hold keys, and a hold key is no pay key.
    assert _status(await payer.pay(merchant.email, 10, "h-1")) == (422, "idempotency_key_reused")
    paid = await payer.pay(merchant.email, 10, "p-1")
    assert (await payer.pay(merchant.email, 10, "p-1")).status.replayed
    assert paid.status.code == 200
    hold2 = (await _hold(client, payer, merchant, 100)).hold.hold
    voided = await _void(client, merchant, hold2.hold_id, key="v-1")
    replay = await _void(client, merchant, hold2.hold_id, key="v-1")
    assert replay.status.replayed and replay.void == voided.void
    assert _counted(app_server, "created") == 2 and _counted(app_server, "voided") == 1


@pytest_twisted.ensureDeferred
async def test_list_filters_by_role_and_state_and_pages_newest_first(client, app_server):
    payer, merchant = await _pair(client)
    made = [(await _hold(client, payer, merchant, 100 + i)).hold.hold.hold_id for i in range(5)]
    back = (await _hold(client, merchant, payer, 1, expires_in=60)).status.code
    assert back == 422  # the merchant has nothing available
    await _void(client, merchant, made[0])
    seen, cursor = [], ""
    while True:
        page = await client.call(
            messages.holds(payer.user_id, payer.token_id, limit=2, cursor=cursor)
        )
        assert page.status.code == 200
        seen += [h.hold_id for h in page.holds.holds]
        cursor = page.holds.next_cursor
        if not cursor:
            break
    assert seen == made[::-1]
    as_receiver = await client.call(messages.holds(payer.user_id, payer.token_id, "receiver"))
    assert list(as_receiver.holds.holds) == []
    merchant_view = await client.call(
        messages.holds(merchant.user_id, merchant.token_id, "receiver", "voided")
    )
    assert [h.hold_id for h in merchant_view.holds.holds] == [made[0]]
    held = await client.call(messages.holds(payer.user_id, payer.token_id, "payer", "held"))
    assert len(held.holds.holds) == 4
    for bad in (dict(role="x"), dict(state="gone"), dict(limit=101), dict(cursor="zz")):
        response = await client.call(messages.holds(payer.user_id, payer.token_id, **bad))
        assert _status(response) == (400, "invalid_request"), bad


@pytest_twisted.ensureDeferred
async def test_hold_ids_are_read_in_either_case_like_every_id(client, app_server):
    """The one id rule (``fields.public_id``): a UUID in either case names the same hold, as
    a transaction id does for a refund; a replay of a key matches across spellings."""
    payer, merchant = await _pair(client)
    hold = (await _hold(client, payer, merchant, 1000)).hold.hold
    first = await _capture(client, merchant, hold.hold_id.upper(), 400, key="cap-case")
    assert _status(first) == (200, "") and first.capture.hold.hold_id == hold.hold_id
    again = await _capture(client, merchant, hold.hold_id, 400, key="cap-case")
    assert _status(again) == (200, "") and again.status.replayed
    assert again.capture.transaction_id == first.capture.transaction_id
    other = (await _hold(client, payer, merchant, 100)).hold.hold
    voided = await _void(client, merchant, other.hold_id.upper())
    assert _status(voided) == (200, "") and voided.void.hold.hold_id == other.hold_id
    assert _status(await _void(client, merchant, other.hold_id.upper() + "0")) == (
        404,
        "hold_not_found",
    )


@pytest_twisted.ensureDeferred
async def test_transactions_filtered_by_hold_are_its_capture(client, app_server):
    payer, merchant = await _pair(client)
    hold = (await _hold(client, payer, merchant, 900)).hold.hold
    other = (await _hold(client, payer, merchant, 100)).hold.hold
    assert (await payer.pay(merchant.email, 5)).status.code == 200
    assert list((await merchant.transactions(hold_id=hold.hold_id)).transactions.transactions) == []
    captured = await _capture(client, merchant, hold.hold_id, 700)
    for who, spelled in ((merchant, hold.hold_id), (payer, hold.hold_id.upper())):
        listed = await who.transactions(hold_id=spelled)
        assert listed.status.code == 200, listed.status
        [tx] = listed.transactions.transactions
        assert (tx.transaction_id, tx.kind, tx.hold_id, tx.amount) == (
            captured.capture.transaction_id,
            "capture",
            hold.hold_id,
            700,
        )
        assert listed.transactions.next_cursor == ""
    assert (
        list((await merchant.transactions(hold_id=other.hold_id)).transactions.transactions) == []
    )
    stranger = await new_session(client, "stranger")
    assert list((await stranger.transactions(hold_id=hold.hold_id)).transactions.transactions) == []
    bad = await merchant.transactions(hold_id="not-a-hold")
    assert _status(bad) == (400, "invalid_request") and "hold_id" in bad.status.message
