"""Work put off to the end of the reactor's turn: after the events of one wait (and the
timed and thread calls that follow it) have been handled, before the reactor waits again.

A web process's requests to one app server (or to Redis) written in one turn go out in one
write at its end (``eager.hold_for_turn``): the reactor was not going to do anything else
before it, so this adds no wait. Twisted has no public hook there; ``at_turn_end`` wraps
the reactor's ``doIteration``, which its main loop calls for each wait
(``ReactorBase.mainLoop``; a timed call per turn cost more).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

_due: dict[int, list[Callable[[], None]]] = {}
"""The calls due at the end of the current turn, by reactor (``id``)."""


def at_turn_end(reactor: Any, call: Callable[[], None]) -> None:
    """Call ``call()`` at the end of ``reactor``'s current turn (before it next waits for
    events)."""
    due = _due.get(id(reactor))
    if due is None:
        due = _due[id(reactor)] = []
        _hook(reactor, due)
    due.append(call)


def _hook(reactor: Any, due: list[Callable[[], None]]) -> None:
    wait = reactor.doIteration

    def doIteration(timeout: float | None) -> None:
        if due:
            while due:
                calls = list(due)
                due.clear()
                for call in calls:
                    call()
            timeout = reactor.timeout() if reactor.running else 0  # a call may add a timer
        wait(timeout)

    reactor.doIteration = doIteration
