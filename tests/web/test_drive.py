"""``drive``: a coroutine run to completion; its Deferred fires once with the outcome and
cancelling it never reaches the work."""

from __future__ import annotations

import pytest
from twisted.internet import defer
from twisted.python.failure import Failure

from shillings_web.drive import drive


async def _twice(first: defer.Deferred[int], second: defer.Deferred[int]) -> int:
    return await first + await _inner(second)


async def _inner(d: defer.Deferred[int]) -> int:
    return await d * 10


def _outcome(d: defer.Deferred) -> list:
    seen: list = []
    d.addBoth(seen.append)
    return seen


def test_a_coroutine_that_awaits_nothing_unfired_completes_at_once():
    assert _outcome(drive(_twice(defer.succeed(1), defer.succeed(2)))) == [21]


def test_results_come_from_the_awaited_deferreds_when_they_fire():
    first, second = defer.Deferred(), defer.Deferred()
    seen = _outcome(drive(_twice(first, second)))
    first.callback(3)
    assert seen == []
    second.callback(4)
    assert seen == [43]
    assert (first.result, second.result) == (None, None)  # consumed, as ensureDeferred does


def test_an_awaited_failure_is_raised_in_the_coroutine_and_can_be_caught():
    async def catching(d: defer.Deferred[int]) -> str:
        try:
            await d
        except KeyError as e:
            return f"caught {e}"
        return "not raised"

    d: defer.Deferred[int] = defer.Deferred()
    seen = _outcome(drive(catching(d)))
    d.errback(KeyError("k"))
    assert seen == ["caught 'k'"]


def test_an_escaping_error_fails_the_deferred():
    d: defer.Deferred[int] = defer.Deferred()
    seen = _outcome(drive(_twice(d, defer.succeed(1))))
    d.errback(ValueError("boom"))
    assert len(seen) == 1 and isinstance(seen[0], Failure)
    assert seen[0].check(ValueError)


def test_cancelling_fails_the_deferred_but_the_work_goes_on():
    first, second = defer.Deferred(), defer.Deferred()
    finished: list[int] = []

    async def work() -> int:
        total = await _twice(first, second)
        finished.append(total)
        return total

    running = drive(work())
    seen = _outcome(running)
    running.cancel()
    assert len(seen) == 1 and seen[0].check(defer.CancelledError)
    assert not first.called  # the awaited Deferred was not cancelled
    first.callback(1)
    second.callback(2)
    assert finished == [21]
    assert len(seen) == 1  # fired once only


def test_something_else_awaited_is_sent_back():
    class Bare:
        def __await__(self):
            value = yield "plain"
            return value

    async def awaiting_bare() -> object:
        return await Bare()

    assert _outcome(drive(awaiting_bare())) == ["plain"]


@pytest.mark.parametrize("fire", ["callback", "errback"])
def test_an_unfired_failure_left_in_an_awaited_deferred_is_not_unhandled(fire):
    async def swallow(d: defer.Deferred[int]) -> None:
        try:
            await d
        except ValueError:
            pass

    d: defer.Deferred[int] = defer.Deferred()
    seen = _outcome(drive(swallow(d)))
    getattr(d, fire)(ValueError("x") if fire == "errback" else 1)
    assert seen == [None]
    assert d.result is None
