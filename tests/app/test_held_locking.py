"""Holds under concurrency, found by reliability scenario 17 and pinned here with row locks.

- A hold committed while a payment waits for its payer's row lock counts in that payment's
  check. A payment's lookup (a plain read) fixes the transaction's REPEATABLE READ snapshot
  before the wait, so ``money.lock_users`` must read the active holds with a locking read,
  which sees the rows committed during the wait (``available`` went negative in the replay).
- A capture or void is refused unless its own instant is before the hold's expiry: the
  hold's state is read on the database's clock as the locking statement begins, and the
  change is stamped later (a capture was recorded 2.5 ms after its hold expired)."""

from __future__ import annotations

import uuid

import pymysql
import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.defer import ensureDeferred
from twisted.internet.task import deferLater
from twisted.internet.threads import deferToThread

from shillings_app.config import parse_dsn
from shillings_app.errors import HoldNotActive
from shillings_app.storage import holds
from tests import protocol_requests as messages
from tests.app.helpers import new_session, sql


async def _until_a_lock_wait(dsn: str) -> None:
    """Return once some transaction waits for a row lock (at most 10 s). The query runs in a
    thread: the app server under test shares this reactor."""
    query = "SELECT COUNT(*) FROM information_schema.innodb_trx WHERE trx_state = 'LOCK WAIT'"
    deadline = reactor.seconds() + 10
    while (await deferToThread(sql, dsn, query))[0][0] == 0:
        assert reactor.seconds() < deadline, "the payment never waited for the payer's row"
        await deferLater(reactor, 0.01, lambda: None)


@pytest_twisted.ensureDeferred
async def test_a_hold_committed_during_the_lock_wait_counts(client, app_server):
    payer = await new_session(client, "payer")
    merchant = await new_session(client, "merchant")
    assert (await payer.topup(10_000)).status.code == 200
    # Another transaction holds the payer's row and reserves 6,000 of the 10,000 in a hold,
    # as a hold's creation does; the payment of 5,000 starts, then waits for the row.
    conn = pymysql.connect(**parse_dsn(app_server.dsn))
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT balance FROM users WHERE user_id = %s FOR UPDATE", (payer.user_id,))
            cur.execute(
                "INSERT INTO holds (hold_id, payer_id, payer_email, receiver_id, receiver_email,"
                " amount, expires_at, created_at, updated_at) VALUES (%s, %s, %s, %s, %s, 6000,"
                " UTC_TIMESTAMP(6) + INTERVAL 1 HOUR, UTC_TIMESTAMP(6), UTC_TIMESTAMP(6))",
                (str(uuid.uuid4()), payer.user_id, payer.email, merchant.user_id, merchant.email),
            )
        paying = ensureDeferred(payer.pay(merchant.email, 5000))
        await _until_a_lock_wait(app_server.dsn)
        conn.commit()
    finally:
        conn.close()
    response = await paying
    assert (response.status.code, response.status.reason) == (422, "insufficient_funds")
    user = (await payer.profile()).profile.user
    assert (user.balance, user.held, user.available) == (10_000, 6000, 4000)


@pytest_twisted.ensureDeferred
async def test_a_change_is_refused_when_its_instant_is_past_the_expiry(client, app_server):
    """The hold's state is read on the database's clock as the locking statement begins;
    the change is stamped later, with the app's clock. Here the session's clock is set 5 s
    back (as if the statement had begun then): the hold, expired 1 s ago, still reads as
    held, and only the check of the change's own instant refuses it."""
    payer = await new_session(client, "payer")
    merchant = await new_session(client, "merchant")
    assert (await payer.topup(10_000)).status.code == 200
    made = await client.call(
        messages.hold(payer.user_id, payer.token_id, merchant.email, 2500, 3600)
    )
    hold_id = made.hold.hold.hold_id
    expire = "UPDATE holds SET expires_at = UTC_TIMESTAMP(6) - INTERVAL 1 SECOND WHERE hold_id = %s"
    sql(app_server.dsn, expire, (hold_id,))
    conn = pymysql.connect(**parse_dsn(app_server.dsn))
    try:
        with conn.cursor() as cur:
            cur.execute("SET @@timestamp = UNIX_TIMESTAMP(NOW(6)) - 5")
            locked = holds.lock_hold(cur, hold_id)
            assert locked is not None and locked.state == "held"
            with pytest.raises(HoldNotActive):
                holds.begin_change(cur, merchant.user_id, merchant.token_id, hold_id, None)
    finally:
        conn.rollback()
        conn.close()
