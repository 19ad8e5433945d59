"""What the group-commit tests share: an app server with one batch in flight at a time,
and one batch formed deterministically behind a row lock the test holds."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from twisted.internet import defer, reactor
from twisted.internet.endpoints import clientFromString, connectProtocol
from twisted.internet.task import deferLater

from shillings_proto import pb
from shillings_proto.framing import ShillingsClientProtocol
from tests.app.helpers import Session, new_session, row_locked, sql


def _status(response: pb.Response) -> tuple[int, str]:
    return response.status.code, response.status.reason


async def _until(predicate: Callable[[], bool], within: float = 10.0) -> None:
    """Wait (polling the reactor) until ``predicate()`` holds; fail after ``within`` s."""
    for _ in range(int(within / 0.01)):
        if predicate():
            return
        await deferLater(reactor, 0.01, lambda: None)
    assert predicate()


def _waiting_for_lock(dsn: str) -> int:
    """Statements of this database now waiting in ``lock_users``' FOR UPDATE."""
    return int(
        sql(
            dsn,
            "SELECT COUNT(*) FROM information_schema.processlist WHERE command = 'Query'"
            " AND info LIKE 'SELECT user_id, balance%%FOR UPDATE'",
        )[0][0]
    )


@asynccontextmanager
async def _server(make_server: Any, **config: Any) -> AsyncIterator[tuple[Any, Any]]:
    """An app server with one batch in flight at a time (unless ``config`` says otherwise)
    and a client connected to it."""
    server = await make_server(**{"batch_in_flight": 1, **config})
    endpoint = clientFromString(reactor, server.address)
    client = await connectProtocol(endpoint, ShillingsClientProtocol())
    try:
        yield server, client
    finally:
        client.transport.loseConnection()
        await client.lost_deferred


def _batcher(server: Any, name: str) -> Any:
    return server.factory.ctx.batchers[name]


async def _one_batch(
    server: Any, blocker: Session, command: str, send: Callable[[], list[defer.Deferred]]
) -> tuple[pb.Response, list[pb.Response]]:
    """``blocker`` (who has money) starts a batch of one (a 1-cent payment to itself is
    refused before locking, so: a top-up, or a payment to a fresh user) while the test holds
    its row; the requests of ``send()`` then wait in the batcher and, the lock released, run
    as one batch. Returns the blocker's answer and theirs."""
    with row_locked(server.dsn, blocker.user_id):
        if command == "pay":
            sink = await new_session(blocker.client, "sink")
            first = blocker.pay(sink.email, 1)
        else:
            first = blocker.topup(1)
        first_answer = defer.ensureDeferred(first)
        await _until(lambda: _waiting_for_lock(server.dsn) == 1)
        calls = send()
        await _until(lambda: _batcher(server, command).waiting == len(calls))
        assert _batcher(server, command).running == 1
    answers = await defer.gatherResults(calls)
    return await first_answer, answers
