"""Waiting in tests for a condition another process or connection brings about."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet import task


async def poll_until(
    reactor: Any, predicate: Callable[[], bool], within: float, step: float = 0.01
) -> bool:
    """Wait (at most ``within`` seconds) until ``predicate()`` is true; return it."""
    for _ in range(max(1, int(within / step))):
        if predicate():
            return True
        await task.deferLater(reactor, step)
    return predicate()
