"""A keyed webhook registration racing its own retry: a retry that read before the first
attempt committed, and is then refused by what that attempt did (the fifth endpoint), must
replay its answer (SPEC §2: same key, same body, same response)."""

from __future__ import annotations

import pytest_twisted
from twisted.internet import defer, reactor

from tests.app.helpers import Session, new_session, row_locked, sql
from tests.app.test_webhooks import URL, create, listed
from tests.polling import poll_until


def _waiting_for_the_user(dsn: str) -> int:
    """Registrations waiting on the user's row lock (``webhooks.lock_user``)."""
    return int(
        sql(
            dsn,
            "SELECT COUNT(*) FROM information_schema.processlist"
            " WHERE command = 'Query' AND info LIKE 'SELECT balance FROM users%%FOR UPDATE'",
        )[0][0]
    )


@pytest_twisted.ensureDeferred
async def test_retries_of_the_fifth_registration_replay_it(app_server, connect):
    alice = await new_session(await connect(), "alice")
    for i in range(4):
        assert (await create(alice, url=f"{URL}/{i}")).status.code == 201
    sessions = [Session(await connect(), alice.user, alice.login) for _ in range(3)]
    with row_locked(app_server.dsn, alice.user_id):
        pending = [defer.ensureDeferred(create(s, url=f"{URL}/5", key="fifth")) for s in sessions]
        assert await poll_until(reactor, lambda: _waiting_for_the_user(app_server.dsn) == 3, 5.0)
    answers = await defer.gatherResults(pending)
    assert [(a.status.code, a.status.reason) for a in answers] == [(201, "")] * 3
    created = {a.webhook_create.webhook.webhook_id for a in answers}
    assert len(created) == 1
    assert len({a.webhook_create.webhook.secret for a in answers}) == 1
    assert len(await listed(alice)) == 5
