"""Client-side helpers for app server tests: sign up, log in, authenticated calls."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

import pymysql

from shillings_app.config import AppConfig, parse_dsn
from shillings_proto import pb
from shillings_proto.framing import ShillingsClientProtocol
from tests import protocol_requests as messages

PASSWORD = "correct horse battery"
_emails = itertools.count()


def sql(dsn: str, query: str, args: tuple = ()) -> list[tuple]:
    """Run one statement against the test database (autocommit); return its rows."""
    conn = pymysql.connect(**parse_dsn(dsn), autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute(query, args)
            return list(cur.fetchall())
    finally:
        conn.close()


@contextmanager
def row_locked(
    dsn: str, user_id: int, select: str = "SELECT balance FROM users WHERE user_id = %s"
) -> Iterator[None]:
    """Hold ``select … FOR UPDATE`` (by default: one user's row; its parameter is the user
    id), from another connection, until the block ends (then commit, releasing it)."""
    conn = pymysql.connect(**parse_dsn(dsn))
    try:
        with conn.cursor() as cur:
            cur.execute("BEGIN")
            cur.execute(f"{select} FOR UPDATE", (user_id,))
        yield
    finally:
        conn.commit()
        conn.close()


def new_email(prefix: str = "user") -> str:
    return f"{prefix}{next(_emails)}@example.com"


async def signup(client: ShillingsClientProtocol, email: str | None = None, **fields: str):
    """Sign up a user (201 asserted); return the pb.User."""
    values = {
        "first_name": "Ada",
        "middle_name": "",
        "last_name": "Lovelace",
        "email": email or new_email(),
        "phone": "+15551234567",
        "password": PASSWORD,
    }
    values.update(fields)
    response = await client.call(messages.signup(**values))
    assert response.status.code == 201, response.status
    return response.signup.user


async def login(client: ShillingsClientProtocol, email: str, password: str = PASSWORD):
    """Log in (200 asserted); return the pb.LoginResponse."""
    response = await client.call(messages.login(email, password))
    assert response.status.code == 200, response.status
    return response.login


class Session:
    """A signed-up, logged-in user with helpers for authenticated calls."""

    def __init__(self, client: ShillingsClientProtocol, user: pb.User, token: pb.LoginResponse):
        self.client = client
        self.user = user
        self.user_id = user.user_id
        self.email = user.email
        self.token_id = token.token_id
        self.login = token

    async def topup(self, amount: int, key: str = "") -> pb.Response:
        return await self.client.call(messages.topup(self.user_id, self.token_id, amount, key))

    async def pay(self, receiver_email: str, amount: int, key: str = "") -> pb.Response:
        return await self.client.call(
            messages.pay(self.user_id, self.token_id, receiver_email, amount, key)
        )

    async def refund(self, transaction_id: str, amount: int = 0, key: str = "") -> pb.Response:
        return await self.client.call(
            messages.refund(self.user_id, self.token_id, transaction_id, amount, key)
        )

    async def profile(self) -> pb.Response:
        return await self.client.call(messages.profile(self.user_id, self.token_id))

    async def balance(self) -> int:
        response = await self.profile()
        assert response.status.code == 200, response.status
        return response.profile.user.balance

    async def transactions(
        self, limit: int = 0, cursor: str = "", hold_id: str = ""
    ) -> pb.Response:
        return await self.client.call(
            messages.transactions(self.user_id, self.token_id, limit, cursor, hold_id)
        )


async def new_session(client: ShillingsClientProtocol, prefix: str = "user") -> Session:
    user = await signup(client, new_email(prefix))
    token = await login(client, user.email)
    return Session(client, user, token)


@asynccontextmanager
async def serving(dsn: str) -> AsyncIterator[ShillingsClientProtocol]:
    """An app server on the (already migrated) database ``dsn`` and a client connected to
    it, for tests that prepare the database before any server runs; both stopped after."""
    from twisted.internet import reactor
    from twisted.internet.endpoints import clientFromString, connectProtocol

    from shillings_app.server import AppServer
    from tests.conftest import TEST_JWT_SECRET

    server = AppServer(
        AppConfig(
            listen="tcp:0:interface=127.0.0.1",
            mysql_dsn=dsn,
            jwt_secret=TEST_JWT_SECRET,
            bcrypt_cost=4,
            db_pool_min=1,
            db_pool_max=4,
        )
    )
    await server.start()
    try:
        client = await connectProtocol(
            clientFromString(reactor, server.address), ShillingsClientProtocol()
        )
        try:
            yield client
        finally:
            client.transport.loseConnection()
            await client.lost_deferred
    finally:
        await server.stop()
