"""Clients of the app server for tests: real sockets, the real client protocol."""

from __future__ import annotations

import dataclasses

import pytest_twisted
from twisted.internet import reactor
from twisted.internet.endpoints import clientFromString, connectProtocol

from shillings_app.server import AppServer
from shillings_proto.framing import ShillingsClientProtocol


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
async def make_server(app_server):
    """Start extra app servers on the same database with config overrides; stopped after."""
    started: list[AppServer] = []

    async def _make(**overrides: object) -> AppServer:
        config = dataclasses.replace(
            app_server.config, listen="tcp:0:interface=127.0.0.1", **overrides
        )
        server = AppServer(config)
        await server.start()
        started.append(server)
        return server

    yield _make
    for server in started:
        await server.stop()
