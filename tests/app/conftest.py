"""Clients of the app server for tests: real sockets, the real client protocol."""

from __future__ import annotations

import pytest_twisted
from twisted.internet import reactor
from twisted.internet.endpoints import clientFromString, connectProtocol

from shillings_proto.framing import ShillingsClientProtocol
from tests.app.reconcile_ledger import write_ledger


@pytest_twisted.async_yield_fixture
async def connect(app_server):
    """A factory of connected clients; all are closed after the test."""
    opened: list[ShillingsClientProtocol] = []

    async def _connect(address: str | None = None) -> ShillingsClientProtocol:
        endpoint = clientFromString(reactor, address or app_server.address)
        proto = await connectProtocol(endpoint, ShillingsClientProtocol())
        opened.append(proto)
        return proto

    yield _connect
    for proto in opened:
        if proto.is_connected:
            proto.transport.loseConnection()
            await proto.lost_deferred


@pytest_twisted.async_yield_fixture
async def client(connect):
    """One connected client."""
    yield await connect()


@pytest_twisted.async_yield_fixture
async def ledger(app_server, client):
    """The ledger of tests/app/reconcile_ledger.py, written afresh for each test."""
    yield await write_ledger(app_server, client)
