"""A capture or void is refused unless its own instant is before the hold's expiry: the
hold's state is read on the database's clock as the locking statement begins, and the
change is stamped later (reliability scenario 17 saw a capture recorded 2.5 ms after its
hold expired)."""

from __future__ import annotations

import pymysql
import pytest
import pytest_twisted

from shillings_app.config import parse_dsn
from shillings_app.errors import HoldNotActive
from shillings_app.storage import holds
from tests import protocol_requests as messages
from tests.app.helpers import new_session, sql


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
