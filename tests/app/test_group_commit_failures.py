"""Group commit under failures (docs/ARCHITECTURE.md, "Group commit"): a member past its
deadline, a deadline passing before COMMIT, opposite payments that could deadlock, a
connection lost before COMMIT: each member keeps the outcome a lone request would have.
Batches are formed as in test_group_commit.py (tests/app/group_commit.py)."""

from __future__ import annotations

import time
from collections import Counter

import pytest_twisted
from twisted.internet import defer, reactor
from twisted.internet.endpoints import clientFromString, connectProtocol

from shillings_proto.framing import ShillingsClientProtocol
from tests import protocol_requests as messages
from tests.app.group_commit import _batcher, _one_batch, _server, _status, _until, _waiting_for_lock
from tests.app.helpers import new_session, row_locked, sql


@pytest_twisted.ensureDeferred
async def test_a_member_past_its_deadline_before_its_batch_starts_is_refused(make_server):
    """A payment whose deadline passes while it waits for its batch is answered 503 "no
    effect" and never enters a transaction; its batch-mate is applied."""
    async with _server(make_server) as (server, client):
        payer = await new_session(client, "payer")
        payee = await new_session(client, "payee")
        await payer.topup(1_000)
        late_request = messages.pay(payer.user_id, payer.token_id, payee.email, 100, "late")
        with row_locked(server.dsn, payer.user_id):
            sink = await new_session(client, "sink")
            blocked = defer.ensureDeferred(payer.pay(sink.email, 1))
            await _until(lambda: _waiting_for_lock(server.dsn) == 1)
            late_request.deadline_ms = int((time.time() + 0.6) * 1000)
            calls = [
                client.call(late_request, timeout=10),
                defer.ensureDeferred(payer.pay(payee.email, 200)),
            ]
            batcher = _batcher(server, "pay")
            await _until(lambda: batcher.waiting == 2)
            # The server's deadline is the client's less a margin: past the client's, both.
            await _until(lambda: time.time() * 1000 > late_request.deadline_ms, within=5)
        late, on_time = await defer.gatherResults(calls)
        assert _status(await blocked) == (200, "")
        assert (_status(late), late.status.no_effect) == ((503, "unavailable"), True)
        assert late.status.message == "could not be completed in time"
        assert _status(on_time) == (200, "")
        assert batcher.sizes == Counter({1: 2})
        assert await payee.balance() == 200
        assert sql(server.dsn, "SELECT COUNT(*) FROM idempotency_keys")[0][0] == 0


@pytest_twisted.ensureDeferred
async def test_a_deadline_passing_before_commit_rolls_back_and_reruns_the_others(make_server):
    """The batch [late, on time] waits in its lock statement (the test holds the late
    payment's receiver) until the late one's deadline has passed: it rolls back, the late
    one is answered 503 "no effect", and the other is applied by a batch of its own."""
    async with _server(make_server) as (server, client):
        payer = await new_session(client, "payer")
        payee = await new_session(client, "payee")
        held = await new_session(client, "held")
        await payer.topup(1_000)
        late_request = messages.pay(payer.user_id, payer.token_id, held.email, 100, "late")
        batcher_calls: list[defer.Deferred] = []
        with row_locked(server.dsn, held.user_id):
            with row_locked(server.dsn, payer.user_id):
                sink = await new_session(client, "sink")
                blocked = defer.ensureDeferred(payer.pay(sink.email, 1))
                await _until(lambda: _waiting_for_lock(server.dsn) == 1)
                late_request.deadline_ms = int((time.time() + 2.0) * 1000)
                batcher_calls = [
                    client.call(late_request, timeout=10),
                    defer.ensureDeferred(payer.pay(payee.email, 200)),
                ]
                batcher = _batcher(server, "pay")
                await _until(lambda: batcher.waiting == 2)
            assert _status(await blocked) == (200, "")
            await _until(lambda: _waiting_for_lock(server.dsn) == 1)  # the batch of two
            assert batcher.sizes == Counter({1: 1, 2: 1})
            await _until(lambda: time.time() * 1000 > late_request.deadline_ms, within=5)
        late, on_time = await defer.gatherResults(batcher_calls)
        assert (_status(late), late.status.no_effect) == ((503, "unavailable"), True)
        assert _status(on_time) == (200, "")
        assert batcher.sizes == Counter({1: 2, 2: 1})
        assert await held.balance() == 0
        assert await payee.balance() == 200
        assert await payer.balance() == 1_000 - 1 - 200


@pytest_twisted.ensureDeferred
async def test_opposite_payments_in_one_batch_and_across_batches_never_deadlock(make_server):
    """Opposite payments inside one batch, then a storm of them from several connections
    through two concurrent batches of at most four: no deadlock, money conserved."""
    async with _server(make_server) as (server, client):
        a = await new_session(client, "a")
        b = await new_session(client, "b")
        await a.topup(1_000)
        await b.topup(1_000)

        def send() -> list[defer.Deferred]:
            return [
                defer.ensureDeferred(a.pay(b.email, 300)),
                defer.ensureDeferred(b.pay(a.email, 500)),
            ]

        _, answers = await _one_batch(server, a, "pay", send)
        assert [r.pay.sender_balance for r in answers] == [1_000 - 1 - 300, 1_000 + 300 - 500]

    async with _server(make_server, batch_in_flight=2, batch_max=4) as (server, _client):
        clients = [
            await connectProtocol(
                clientFromString(reactor, server.address), ShillingsClientProtocol()
            )
            for _ in range(4)
        ]
        try:
            users = [await new_session(clients[n], f"u{n}_") for n in range(4)]
            for user in users:
                await user.topup(10_000)
            calls = [
                clients[n % 4].call(
                    messages.pay(
                        users[n % 4].user_id,
                        users[n % 4].token_id,
                        users[(n + 1 + n // 4 % 3) % 4].email,
                        1 + n % 50,
                    ),
                    timeout=30,
                )
                for n in range(120)
            ]
            answers = await defer.gatherResults(calls)
        finally:
            for c in clients:
                c.transport.loseConnection()
                await c.lost_deferred
        assert {_status(r) for r in answers} == {(200, "")}
        sizes = _batcher(server, "pay").sizes
        assert sum(s * n for s, n in sizes.items()) == 120
        assert max(sizes) > 1
        assert server.db.retries["lock_conflict"] == 0
        [(total, lowest)] = sql(server.dsn, "SELECT SUM(balance), MIN(balance) FROM users")
        assert (total, lowest >= 0) == (2 * 1_000 + 4 * 10_000, True)
        [(payments,)] = sql(server.dsn, "SELECT COUNT(*) FROM transactions WHERE kind = 'payment'")
        assert payments == 1 + 2 + 120


@pytest_twisted.ensureDeferred
async def test_a_batch_whose_connection_is_lost_before_commit_runs_again_whole(make_server):
    """The batch [to a held row, to a free one] loses its database connection while it
    waits in its lock statement: nothing of it was committed, so the whole batch runs again
    on another connection, and both payments are made once."""
    async with _server(make_server) as (server, client):
        payer = await new_session(client, "payer")
        payee = await new_session(client, "payee")
        held = await new_session(client, "held")
        await payer.topup(1_000)
        with row_locked(server.dsn, held.user_id):
            with row_locked(server.dsn, payer.user_id):
                sink = await new_session(client, "sink")
                blocked = defer.ensureDeferred(payer.pay(sink.email, 1))
                await _until(lambda: _waiting_for_lock(server.dsn) == 1)
                calls = [
                    defer.ensureDeferred(payer.pay(held.email, 100, "to-held")),
                    defer.ensureDeferred(payer.pay(payee.email, 200)),
                ]
                batcher = _batcher(server, "pay")
                await _until(lambda: batcher.waiting == 2)
            assert _status(await blocked) == (200, "")
            await _until(lambda: _waiting_for_lock(server.dsn) == 1)  # the batch of two
            [(connection,)] = sql(
                server.dsn,
                "SELECT id FROM information_schema.processlist WHERE command = 'Query'"
                " AND info LIKE 'SELECT user_id, balance%%FOR UPDATE'",
            )
            sql(server.dsn, f"KILL {int(connection)}")
            await _until(lambda: server.db.retries["reconnect"] == 1)
            await _until(lambda: _waiting_for_lock(server.dsn) == 1)  # running again
        answers = await defer.gatherResults(calls)
        assert [_status(a) for a in answers] == [(200, ""), (200, "")]
        assert batcher.sizes == Counter({1: 1, 2: 1})  # retried within its one run
        assert await held.balance() == 100
        assert await payee.balance() == 200
        [(payments,)] = sql(server.dsn, "SELECT COUNT(*) FROM transactions WHERE kind = 'payment'")
        assert payments == 3
