"""Many requests in flight on one connection; concurrent payments keep money conserved."""

from __future__ import annotations

import random
from typing import Any

import pytest_twisted
from twisted.internet import defer

from shillings_proto import pb
from tests import protocol_requests as messages
from tests.app.helpers import PASSWORD, login, new_session, signup, sql


class HeldPasswords:
    """Wraps the server's password hasher: every ``verify`` waits until the test releases
    it, so a login is still in progress while the requests sent after it are answered."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.release: defer.Deferred[None] = defer.Deferred()
        self.waiting = 0
        self._watchers: list[tuple[int, defer.Deferred[None]]] = []

    def when_waiting(self, count: int) -> defer.Deferred[None]:
        """Fires once ``count`` checks are held."""
        d: defer.Deferred[None] = defer.Deferred()
        self._watchers.append((count, d))
        self._notify()
        return d

    def _notify(self) -> None:
        for count, d in list(self._watchers):
            if self.waiting >= count:
                self._watchers.remove((count, d))
                d.callback(None)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def verify(self, password: str, hashed: str, scope: Any) -> bool:
        self.waiting += 1
        self._notify()
        await self.release
        return bool(await self._inner.verify(password, hashed, scope))


@pytest_twisted.ensureDeferred
async def test_many_requests_in_flight_on_one_connection_answered_out_of_order(connect, app_server):
    client = await connect()
    user = await signup(client)
    token = await login(client, user.email)
    held = HeldPasswords(app_server.factory.ctx.passwords)
    app_server.factory.ctx.passwords = held
    requests: list[pb.Request] = []
    for i in range(60):
        if i % 20 == 0:
            requests.append(messages.login(user.email, PASSWORD))
        else:
            requests.append(messages.profile(user.user_id, token.token_id))
    arrival: list[int] = []
    pending = []
    for index, request in enumerate(requests):
        d = client.call(request, timeout=30)
        d.addCallback(lambda response, index=index: arrival.append(index) or response)
        pending.append(d)
    assert client.in_flight == 60
    # Every profile read is answered while the three logins are held in their password check.
    profiles = [d for index, d in enumerate(pending) if index % 20 != 0]
    await defer.gatherResults([*profiles, held.when_waiting(3)])
    assert client.in_flight == 3
    held.release.callback(None)
    responses = await defer.gatherResults(pending)
    for request, response in zip(requests, responses, strict=True):
        assert response.request_id == request.request_id
        assert response.command == request.command
        assert response.status.code == 200
        if request.command == pb.LGN:
            assert response.login.user.user_id == user.user_id and response.login.token
        else:
            assert response.profile.user.user_id == user.user_id
    assert sorted(arrival) == list(range(60))
    assert sorted(arrival[-3:]) == [0, 20, 40]


@pytest_twisted.ensureDeferred
async def test_200_concurrent_payments_conserve_money_and_never_go_negative(connect, app_server):
    clients = [await connect() for _ in range(4)]
    users = [await new_session(clients[i % 4], f"p{i}_") for i in range(5)]
    for user in users:
        assert (await user.topup(20_000)).status.code == 200
    rng = random.Random(20261124)
    calls = []
    for n in range(200):
        sender, receiver = rng.sample(users, 2)
        amount = rng.randint(1, 5_000)
        calls.append(
            clients[n % 4].call(
                messages.pay(sender.user_id, sender.token_id, receiver.email, amount),
                timeout=30,
            )
        )
    responses = await defer.gatherResults(calls)
    outcomes = [(r.status.code, r.status.reason) for r in responses]
    assert set(outcomes) <= {(200, ""), (422, "insufficient_funds")}
    succeeded = outcomes.count((200, ""))
    assert succeeded > 100

    dsn = app_server.dsn
    [(total, lowest)] = sql(dsn, "SELECT SUM(balance), MIN(balance) FROM users")
    assert total == 5 * 20_000
    assert lowest >= 0
    [(payments,)] = sql(dsn, "SELECT COUNT(*) FROM transactions WHERE kind = 'payment'")
    assert payments == succeeded
    mismatched = sql(
        dsn,
        "SELECT u.user_id FROM users u WHERE u.balance <>"
        " (SELECT COALESCE(SUM(CASE WHEN t.receiver_id = u.user_id THEN t.amount"
        "  ELSE -t.amount END), 0)"
        "  FROM transactions t WHERE t.receiver_id = u.user_id OR t.sender_id = u.user_id)",
    )
    assert mismatched == []
    # Both rows are locked in user_id order, so opposite payments never deadlock.
    assert app_server.db.retries["lock_conflict"] == 0
