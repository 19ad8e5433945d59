"""The sweep of expired holds, its timer driven by ``task.Clock`` against the real database:
it marks exactly the expired holds, in batches, with their events, once."""

from __future__ import annotations

import dataclasses

import pytest_twisted
from twisted.internet import task

from shillings_app.holdsweep import HoldSweep
from tests import protocol_requests as messages
from tests.app.helpers import new_session, sql


def _expire(dsn: str, hold_ids: list[str]) -> None:
    marks = ", ".join(["%s"] * len(hold_ids))
    sql(
        dsn,
        "UPDATE holds SET expires_at = UTC_TIMESTAMP(6) - INTERVAL 1 SECOND"
        f" WHERE hold_id IN ({marks})",
        tuple(hold_ids),
    )


@pytest_twisted.ensureDeferred
async def test_sweep_marks_expired_holds_in_batches_on_its_timer(client, app_server):
    payer = await new_session(client, "payer")
    merchant = await new_session(client, "merchant")
    await payer.topup(10_000)
    made = []
    for amount in range(1, 8):
        response = await client.call(
            messages.hold(payer.user_id, payer.token_id, merchant.email, amount)
        )
        made.append(response.hold.hold.hold_id)
    expired, kept = made[:5], made[5:]
    _expire(app_server.dsn, expired)
    clock = task.Clock()
    sweep = HoldSweep(app_server, interval=5.0, clock=clock, batch=2)
    sweep.startService()  # the first sweep runs at start
    await sweep.last
    assert sweep.marked == 5
    states = dict(sql(app_server.dsn, "SELECT hold_id, state FROM holds"))
    assert {h: states[h] for h in expired} == dict.fromkeys(expired, "expired")
    assert {h: states[h] for h in kept} == dict.fromkeys(kept, "held")
    events = sql(app_server.dsn, "SELECT user_id, COUNT(*) FROM events WHERE type = 'hold.expired'"
                 " GROUP BY user_id ORDER BY user_id")  # fmt: skip
    assert events == [(payer.user_id, 5), (merchant.user_id, 5)]
    metric = app_server.metrics.registry.get_sample_value(
        "shillings_app_holds_total", {"event": "expired"}
    )
    assert metric == 5
    # The next tick finds nothing more until another hold expires.
    _expire(app_server.dsn, kept[:1])
    clock.advance(4.9)
    await sweep.last
    assert sweep.marked == 5  # no new sweep before the interval
    clock.advance(0.1)
    await sweep.last
    assert sweep.marked == 1
    assert sql(app_server.dsn, "SELECT COUNT(*) FROM holds WHERE state = 'expired'") == [(6,)]
    assert sql(app_server.dsn, "SELECT COUNT(*) FROM events WHERE type = 'hold.expired'") == [(12,)]
    user = (await payer.profile()).profile.user
    assert (user.held, user.balance) == (7, 10_000)
    await sweep.stopService()


def test_the_app_service_sweeps_beside_the_server(app_server):
    from twisted.internet import reactor

    from shillings_app.service import app_service

    config = dataclasses.replace(app_server.config, hold_sweep_interval=7.0)
    top = app_service(config, reactor)
    sweep = top.getServiceNamed("hold sweep")
    assert isinstance(sweep, HoldSweep) and sweep.step == 7.0
    assert sweep.server is top.getServiceNamed("app server").server


@pytest_twisted.ensureDeferred
async def test_a_failed_sweep_is_logged_counted_and_the_next_one_runs(app_server):
    clock = task.Clock()
    sweep = HoldSweep(app_server, interval=5.0, clock=clock)
    sql(app_server.dsn, "RENAME TABLE holds TO holds_away")
    try:
        sweep.startService()
        await sweep.last
    finally:
        sql(app_server.dsn, "RENAME TABLE holds_away TO holds")
    failures = app_server.metrics.registry.get_sample_value(
        "shillings_app_hold_sweep_failures_total"
    )
    assert failures == 1 and sweep.marked == 0
    clock.advance(5.0)
    await sweep.last
    assert (
        sweep.running
        and app_server.metrics.registry.get_sample_value("shillings_app_hold_sweep_failures_total")
        == 1
    )
    await sweep.stopService()
