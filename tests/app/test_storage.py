"""Storage resilience: pool connections killed by the server are replaced transparently."""

from __future__ import annotations

import pytest_twisted
from twisted.internet import defer

from shillings_app.config import parse_dsn
from tests.app.helpers import new_session, sql


def _kill_app_connections(dsn: str) -> int:
    database = parse_dsn(dsn)["database"]
    ids = sql(
        dsn,
        "SELECT id FROM information_schema.processlist WHERE db = %s AND id <> CONNECTION_ID()",
        (database,),
    )
    for (conn_id,) in ids:
        sql(dsn, f"KILL {int(conn_id)}")
    return len(ids)


@pytest_twisted.ensureDeferred
async def test_requests_survive_the_database_dropping_pool_connections(client, app_server):
    session = await new_session(client)
    # Enough concurrent work to open a connection in every pool thread.
    await defer.gatherResults([defer.ensureDeferred(session.topup(100)) for _ in range(20)])
    assert _kill_app_connections(app_server.dsn) >= 3
    responses = await defer.gatherResults(
        [defer.ensureDeferred(session.topup(100)) for _ in range(20)]
    )
    assert [r.status.code for r in responses] == [200] * 20
    assert await session.balance() == 4_000
    assert app_server.db.retries["reconnect"] >= 1
