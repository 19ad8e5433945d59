"""``shillings_proto.turns.at_turn_end``: calls run once, in order, after the turn's other
work and before the reactor waits for events again."""

from __future__ import annotations

import pytest_twisted
from twisted.internet import defer, reactor

from shillings_proto.turns import at_turn_end


@pytest_twisted.ensureDeferred
async def test_calls_run_once_in_order_at_the_end_of_the_turn():
    seen: list[str] = []
    turn_over: defer.Deferred[None] = defer.Deferred()

    def first() -> None:
        seen.append("first")
        at_turn_end(reactor, lambda: seen.append("added by first"))

    def in_this_turn() -> None:
        at_turn_end(reactor, first)
        at_turn_end(reactor, lambda: seen.append("second"))
        seen.append("rest of the turn")
        reactor.callLater(0, lambda: turn_over.callback(None))

    reactor.callLater(0, in_this_turn)
    await turn_over  # the next turn's timed calls: the reactor has waited in between
    assert seen == ["rest of the turn", "first", "second", "added by first"]
