"""Cursors over HTTP: opaque and typed, paging only the list and the user they were
answered to; a cursor of another list or user is 400 ``invalid_request`` saying so."""

from __future__ import annotations

import pytest_twisted

from tests.web.conftest import user_with_token


@pytest_twisted.ensureDeferred
async def test_cursors_are_typed_and_bound_to_their_user(web):
    alice = await user_with_token(web.client, "alice@example.com", topup="10.00")
    bob = await user_with_token(web.client, "bob@example.com", topup="10.00")
    for n in range(2):
        paid = await web.client.post(
            "/v1/pay", {"receiver_email": "bob@example.com", "amount": n + 1}, token=alice
        )
        assert paid.code == 200, paid.raw

    first = await web.client.get("/v1/transactions?limit=1", token=alice)
    cursor = first.body["next_cursor"]
    assert cursor.startswith("transactions.")
    rest = await web.client.get(f"/v1/transactions?limit=5&cursor={cursor}", token=alice)
    assert rest.code == 200 and len(rest.body["transactions"]) == 2
    assert rest.body["next_cursor"] is None

    on_events = await web.client.get(f"/v1/events?cursor={cursor}", token=alice)
    assert (on_events.code, on_events.reason) == (400, "invalid_request")
    assert on_events.body["status"]["message"] == (
        "cursor belongs to the transactions list, not to events"
    )
    on_holds = await web.client.get(f"/v1/holds?cursor={cursor}", token=alice)
    assert (on_holds.code, on_holds.reason) == (400, "invalid_request")
    as_bob = await web.client.get(f"/v1/transactions?cursor={cursor}", token=bob)
    assert (as_bob.code, as_bob.reason) == (400, "invalid_request")
    assert "not issued to you" in as_bob.body["status"]["message"]
    old_style = await web.client.get("/v1/transactions?cursor=dDE6Mg", token=alice)  # "t1:2"
    assert (old_style.code, old_style.reason) == (400, "invalid_request")

    events_page = await web.client.get("/v1/events?limit=1", token=alice)
    events_cursor = events_page.body["next_cursor"]
    assert events_cursor.startswith("events.")
    more = await web.client.get(f"/v1/events?limit=1&cursor={events_cursor}", token=alice)
    assert more.code == 200 and more.body["events"][0] != events_page.body["events"][0]
