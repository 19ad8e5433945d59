"""Group commit (docs/ARCHITECTURE.md, "Group commit"): payments and top-ups that arrive
while a batch is in flight are applied together in one transaction, and each keeps every
rule of a lone request. Batches are formed deterministically: with one batch in flight at
a time, a first request waits on a row lock the test holds, the requests sent after it
wait in the batcher, and releasing the lock runs them as the next batch."""

from __future__ import annotations

from collections import Counter

import pytest_twisted
from twisted.internet import defer

from tests import protocol_requests as messages
from tests.app.group_commit import _batcher, _one_batch, _server, _status, _until, _waiting_for_lock
from tests.app.helpers import new_session, row_locked, sql
from tests.scrape import scrape


@pytest_twisted.ensureDeferred
async def test_a_request_on_an_idle_server_starts_its_batch_at_once(make_server):
    """Nothing else in flight: the payment reaches the database alone, without waiting for
    company (it is seen waiting on the row lock the test holds, in a batch of one)."""
    async with _server(make_server) as (server, client):
        payer = await new_session(client, "payer")
        payee = await new_session(client, "payee")
        await payer.topup(1_000)
        with row_locked(server.dsn, payer.user_id):
            paying = defer.ensureDeferred(payer.pay(payee.email, 300))
            await _until(lambda: _waiting_for_lock(server.dsn) == 1)
            batcher = _batcher(server, "pay")
            assert (batcher.running, batcher.waiting, batcher.sizes) == (1, 0, Counter({1: 1}))
            assert not paying.called
        assert _status(await paying) == (200, "")
        assert await payee.balance() == 300


@pytest_twisted.ensureDeferred
async def test_each_payment_of_a_batch_succeeds_or_fails_on_its_own(make_server):
    """One batch: a payment without the funds, a good one, one to nobody, one to oneself, a
    revoked token, and a payment made possible by money received earlier in the same batch
    (arrival order). Each gets the answer it would get alone; one transaction ran them."""
    async with _server(make_server, metrics_listen="tcp:0:interface=127.0.0.1") as (
        server,
        client,
    ):
        rich, poor, broke, payee, revoked = [
            await new_session(client, name) for name in ("rich", "poor", "broke", "payee", "rv")
        ]
        await rich.topup(10_000)
        await poor.topup(100)
        await revoked.topup(500)
        answer = await client.call(messages.revoke(revoked.user_id, revoked.token_id, 2**40))
        assert answer.status.code == 200

        def send() -> list[defer.Deferred]:
            return [
                defer.ensureDeferred(poor.pay(payee.email, 500)),  # 100 available
                defer.ensureDeferred(rich.pay(payee.email, 2_000)),
                defer.ensureDeferred(rich.pay("nobody@example.com", 1)),
                defer.ensureDeferred(rich.pay(rich.email, 1)),
                defer.ensureDeferred(revoked.pay(payee.email, 100)),
                defer.ensureDeferred(rich.pay(broke.email, 700)),
                defer.ensureDeferred(broke.pay(payee.email, 600)),  # had 0 before the batch
            ]

        first, answers = await _one_batch(server, rich, "pay", send)
        assert _status(first) == (200, "")
        assert [_status(a) for a in answers] == [
            (422, "insufficient_funds"),
            (200, ""),
            (404, "receiver_not_found"),
            (422, "self_payment"),
            (401, "unauthenticated"),
            (200, ""),
            (200, ""),
        ]
        assert answers[1].pay.sender_balance == 10_000 - 1 - 2_000
        assert answers[5].pay.sender_balance == 10_000 - 1 - 2_000 - 700
        assert answers[6].pay.sender_balance == 100
        assert _batcher(server, "pay").sizes == Counter({1: 1, 7: 1})
        assert await poor.balance() == 100
        assert await payee.balance() == 2_600
        assert await broke.balance() == 100
        ledger = sql(
            server.dsn,
            "SELECT sender_id, amount FROM transactions WHERE kind = 'payment' ORDER BY id",
        )
        assert ledger == [
            (rich.user_id, 1),
            (rich.user_id, 2_000),
            (rich.user_id, 700),
            (broke.user_id, 600),
        ]
        events = sql(
            server.dsn,
            "SELECT user_id, type FROM events WHERE type LIKE 'payment.%%' ORDER BY id",
        )
        assert len(events) == 8
        assert (broke.user_id, "payment.sent") in events
        m = await scrape(server.metrics_port)
    assert m("shillings_app_batch_size_count", operation="pay") == 2
    assert m("shillings_app_batch_size_sum", operation="pay") == 8
    assert m("shillings_app_batch_size_bucket", operation="pay", le="4.0") == 1
    assert m("shillings_app_batch_size_bucket", operation="pay", le="8.0") == 2


@pytest_twisted.ensureDeferred
async def test_an_idempotency_key_used_twice_in_one_batch(make_server):
    """Within a batch the later use of a key replays the earlier one's result (same body)
    or is refused (another body); a key whose first use was refused gets that refusal again;
    trailing spaces spell the same key, as the key column compares them."""
    async with _server(make_server) as (server, client):
        payer = await new_session(client, "payer")
        payee = await new_session(client, "payee")
        await payer.topup(1_000)
        await payee.topup(5_000)

        def send() -> list[defer.Deferred]:
            return [
                defer.ensureDeferred(payer.pay(payee.email, 5_000, "k-free")),  # no funds
                defer.ensureDeferred(payee.pay(payer.email, 5_000)),  # funds now
                defer.ensureDeferred(payer.pay(payee.email, 300, "k")),
                defer.ensureDeferred(payer.pay(payee.email, 300, "k")),
                defer.ensureDeferred(payer.pay(payee.email, 301, "k")),
                defer.ensureDeferred(payer.pay(payee.email, 5_000, "k-free")),
                defer.ensureDeferred(payer.pay(payee.email, 300, "k  ")),  # the column's "k"
            ]

        _, answers = await _one_batch(server, payer, "pay", send)
        assert [_status(a) for a in answers] == [
            (422, "insufficient_funds"),
            (200, ""),
            (200, ""),
            (200, ""),
            (422, "idempotency_key_reused"),
            (422, "insufficient_funds"),  # its key's first use, though the funds came since
            (200, ""),
        ]
        first, again = answers[2], answers[3]
        assert answers[6].status.replayed
        assert answers[6].pay.transaction_id == first.pay.transaction_id
        assert (first.status.replayed, again.status.replayed) == (False, True)
        assert again.pay.transaction_id == first.pay.transaction_id
        assert again.pay.sender_balance == first.pay.sender_balance == 1_000 - 1 + 5_000 - 300
        assert await payee.balance() == 300
        keys = sql(server.dsn, "SELECT idem_key FROM idempotency_keys ORDER BY idem_key")
        assert keys == [("k",), ("k-free",)]
        # Across batches too: the stored key replays, by either spelling.
        for spelling in ("k", "k "):
            later = await payer.pay(payee.email, 300, spelling)
            assert later.status.replayed, spelling
            assert later.pay.transaction_id == first.pay.transaction_id, spelling


@pytest_twisted.ensureDeferred
async def test_topups_in_one_batch(make_server):
    """A top-up over the balance limit fails alone; a duplicate key replays; each balance
    counts the top-ups before it in the batch."""
    async with _server(make_server) as (server, client):
        user = await new_session(client, "user")
        other = await new_session(client, "other")
        sql(
            server.dsn,
            "UPDATE users SET balance = %s WHERE user_id = %s",
            (10**15 - 50, other.user_id),
        )

        def send() -> list[defer.Deferred]:
            return [
                defer.ensureDeferred(user.topup(100, "t")),
                defer.ensureDeferred(other.topup(51)),
                defer.ensureDeferred(user.topup(100, "t")),
                defer.ensureDeferred(user.topup(250)),
                defer.ensureDeferred(other.topup(50)),
            ]

        first, answers = await _one_batch(server, user, "topup", send)
        assert (_status(first), first.topup.balance) == ((200, ""), 1)
        assert [_status(a) for a in answers] == [(200, ""), (422, "balance_limit")] + [
            (200, "")
        ] * 3
        assert [a.topup.balance for a in answers if a.status.code == 200] == [
            101,
            101,
            351,
            10**15,
        ]
        assert answers[2].status.replayed
        assert answers[2].topup.transaction_id == answers[0].topup.transaction_id
        assert _batcher(server, "topup").sizes == Counter({1: 1, 5: 1})
        assert await user.balance() == 351


@pytest_twisted.ensureDeferred
async def test_payments_of_a_batch_spend_what_holds_leave_available(make_server):
    """A payer with 1,000 of which a hold reserves 600: in one batch a payment of 500 is
    refused (400 available) and one of 400 then 1 more are judged against what is left."""
    async with _server(make_server) as (server, client):
        payer = await new_session(client, "payer")
        payee = await new_session(client, "payee")
        await payer.topup(1_001)
        held = await client.call(
            messages.hold(payer.user_id, payer.token_id, payee.email, 600, 600)
        )
        assert held.status.code == 201, held.status

        def send() -> list[defer.Deferred]:
            return [
                defer.ensureDeferred(payer.pay(payee.email, 500)),
                defer.ensureDeferred(payer.pay(payee.email, 400)),
                defer.ensureDeferred(payer.pay(payee.email, 1)),
            ]

        first, answers = await _one_batch(server, payer, "pay", send)
        assert _status(first) == (200, "")  # 1 of the 401 available
        assert [_status(a) for a in answers] == [
            (422, "insufficient_funds"),
            (200, ""),
            (422, "insufficient_funds"),
        ]
        assert answers[1].pay.sender_balance == 600
        assert await payee.balance() == 400


@pytest_twisted.ensureDeferred
async def test_under_backlog_waiting_requests_go_as_one_batch_not_into_free_slots(make_server):
    """Two slots. Two batches wait on a held row while two payments queue; when both end,
    the queue goes as one batch (which waits on another held row). A payment arriving now
    finds a free slot but the batcher backlogged: it waits for that batch and goes next,
    instead of opening a transaction of its own."""
    async with _server(make_server, batch_in_flight=2) as (server, client):
        p, q, r = [await new_session(client, name) for name in ("p", "q", "r")]
        sinks = [await new_session(client, f"sink{n}") for n in range(3)]
        for payer in (p, q, r):
            await payer.topup(1_000)
        assert _status(await r.pay(sinks[2].email, 1)) == (200, "")  # makes the batcher
        batcher = _batcher(server, "pay")
        with row_locked(server.dsn, q.user_id):
            with row_locked(server.dsn, p.user_id):
                started = [defer.ensureDeferred(p.pay(sinks[n].email, 1)) for n in range(2)]
                await _until(lambda: _waiting_for_lock(server.dsn) == 2)
                assert batcher.running == 2
                queued = [defer.ensureDeferred(q.pay(sinks[n].email, 2)) for n in range(2)]
                await _until(lambda: batcher.waiting == 2)
            assert [_status(await d) for d in started] == [(200, "")] * 2
            await _until(lambda: _waiting_for_lock(server.dsn) == 1)  # the two queued, as one
            assert (batcher.running, batcher.waiting, batcher.backlogged) == (1, 0, True)
            late = defer.ensureDeferred(r.pay(sinks[2].email, 3))
            await _until(lambda: batcher.waiting == 1)
            assert batcher.running == 1  # a slot is free, yet it waits
        assert [_status(await d) for d in queued] == [(200, "")] * 2
        assert _status(await late) == (200, "")
        assert batcher.sizes == Counter({1: 4, 2: 1})
        assert not batcher.backlogged
        # Idle again: the next payment starts at once, alone.
        with row_locked(server.dsn, p.user_id):
            alone = defer.ensureDeferred(p.pay(sinks[0].email, 4))
            await _until(lambda: _waiting_for_lock(server.dsn) == 1)
            assert (batcher.running, batcher.waiting) == (1, 0)
        assert _status(await alone) == (200, "")
