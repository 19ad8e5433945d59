"""Running a request's coroutine to completion with less machinery than ``ensureDeferred``.

``defer.ensureDeferred`` copies the context, builds a cancellation status and goes through
``_inlineCallbacks`` (traceback handling for ``returnValue``, a waiting flag) to start a
coroutine and again each time an awaited Deferred fires: ~20k instructions to start one and
~19k per resumption here, per request. A route's work must also not be cancelled when
Klein cancels its Deferred (the client went away: a pay still refreshes the cache), which
took a second, shielding Deferred. ``drive`` does what a route needs and no more: it sends
into the coroutine until it awaits a Deferred that has not fired, resumes it from that
Deferred's callback, and fires its own Deferred with the outcome, once; cancelling that
Deferred fails it (CancelledError) but never reaches the work.

Limits, none of which a route needs: no contextvars copy (the web layer sets none), and a
coroutine may await only Deferreds and other coroutines (as under ``ensureDeferred``,
anything else it yields is sent back to it).
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any, TypeVar

from twisted.internet import defer
from twisted.python.failure import Failure

T = TypeVar("T")


def drive(coroutine: Coroutine[Any, Any, T]) -> defer.Deferred[T]:
    """Start ``coroutine``; the Deferred fires with its result or failure (see the module)."""
    done: defer.Deferred[T] = defer.Deferred()
    _step(coroutine, done, None)
    return done


def _step(coroutine: Coroutine[Any, Any, Any], done: defer.Deferred[Any], value: Any) -> None:
    while True:
        try:
            if isinstance(value, Failure):
                awaited = value.throwExceptionIntoGenerator(coroutine)  # type: ignore[arg-type]
            else:
                awaited = coroutine.send(value)
        except StopIteration as e:
            if not done.called:
                done.callback(e.value)
            return
        except BaseException:
            if not done.called:
                done.errback(Failure())
            return
        if isinstance(awaited, defer.Deferred):
            awaited.addBoth(_resume, coroutine, done)
            return
        value = awaited


def _resume(result: Any, coroutine: Coroutine[Any, Any, Any], done: defer.Deferred[Any]) -> None:
    """The awaited Deferred fired: resume the coroutine with its result (read again by
    ``Deferred.__iter__``) or failure (raised into it, as ``ensureDeferred`` does); the
    Deferred is left with None, as ``ensureDeferred`` leaves it."""
    _step(coroutine, done, result)
