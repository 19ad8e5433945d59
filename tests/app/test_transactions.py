"""Transaction history: newest first, keyset pagination, limits and cursors."""

from __future__ import annotations

import pytest
import pytest_twisted

from tests.app.helpers import new_session


@pytest_twisted.ensureDeferred
async def test_history_lists_own_transactions_newest_first_with_kinds(client):
    alice = await new_session(client, "alice")
    bob = await new_session(client, "bob")
    carol = await new_session(client, "carol")
    topup = await alice.topup(1_000)
    paid = await alice.pay(bob.email, 300)
    back = await bob.pay(alice.email, 100)
    await carol.topup(50)  # not Alice's business
    response = await alice.transactions()
    assert response.status.code == 200 and response.transactions.next_cursor == ""
    rows = list(response.transactions.transactions)
    assert [t.transaction_id for t in rows] == [
        back.pay.transaction_id,
        paid.pay.transaction_id,
        topup.topup.transaction_id,
    ]
    assert [t.kind for t in rows] == ["payment", "payment", "topup"]
    assert (rows[0].sender_email, rows[0].receiver_email, rows[0].amount) == (
        bob.email,
        alice.email,
        100,
    )
    assert not rows[2].HasField("sender_email") and rows[2].receiver_email == alice.email
    assert all(t.created_at.endswith("Z") for t in rows)
    assert rows[0].created_at >= rows[1].created_at >= rows[2].created_at


@pytest_twisted.ensureDeferred
async def test_pagination_walks_every_row_exactly_once(client):
    alice = await new_session(client, "alice")
    bob = await new_session(client, "bob")
    expected = []
    for i in range(1, 24):
        if i % 3 == 0:
            response = await bob.topup(i)
            response = await bob.pay(alice.email, i)
            expected.append(response.pay.transaction_id)
        else:
            response = await alice.topup(i)
            expected.append(response.topup.transaction_id)
    expected.reverse()
    seen: list[str] = []
    cursor = ""
    pages = 0
    for _ in range(20):
        response = await alice.transactions(limit=5, cursor=cursor)
        assert response.status.code == 200
        page = [t.transaction_id for t in response.transactions.transactions]
        assert 0 < len(page) <= 5
        seen.extend(page)
        pages += 1
        cursor = response.transactions.next_cursor
        if not cursor:
            break
    assert seen == expected
    assert pages == 5


@pytest_twisted.ensureDeferred
async def test_default_and_maximum_limits(client):
    session = await new_session(client)
    for _ in range(21):
        await session.topup(1)
    default = await session.transactions()
    assert len(default.transactions.transactions) == 20 and default.transactions.next_cursor
    full = await session.transactions(limit=100)
    assert len(full.transactions.transactions) == 21 and not full.transactions.next_cursor
    over = await session.transactions(limit=101)
    assert (over.status.code, over.status.reason) == (400, "invalid_request")


@pytest.mark.parametrize(
    "cursor",
    ["garbage!", "dDE6YWJj", "eDE6MTA", "dDE6MA", "dDE6MTA", "transactions.", "transactions.!"],
)
@pytest_twisted.ensureDeferred
async def test_bad_cursor_is_400(client, cursor):
    session = await new_session(client)
    response = await session.transactions(limit=5, cursor=cursor)
    assert (response.status.code, response.status.reason) == (400, "invalid_request")


@pytest_twisted.ensureDeferred
async def test_empty_history(client):
    session = await new_session(client)
    response = await session.transactions(limit=10)
    assert response.status.code == 200
    assert list(response.transactions.transactions) == []
    assert response.transactions.next_cursor == ""
