"""Concise one-line log output for twisted.logger (stdout under supervisord, or a file),
written in batches (``shillings_proto.batchlog``: lines of the reactor's thread wait at most
``delay`` seconds; warnings, failures and other threads' lines go at once; ``stop()``
writes what is left when the process stops).
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import IO, Any

from twisted.logger import ILogObserver, LogLevel, formatEvent, globalLogBeginner
from zope.interface import implementer

from shillings_proto.batchlog import LineBatch, urgent


def _message(event: dict[str, Any]) -> str:
    """``formatEvent(event)``; a format without calls (``{f()}``) is filled in by
    ``str.format_map``, which gives the same text without ``string.Formatter``'s pass."""
    fmt = event.get("log_format")
    if isinstance(fmt, str) and "()" not in fmt and "log_flattened" not in event:
        try:
            return fmt.format_map(event)
        except Exception:
            pass  # formatEvent says why it cannot be formatted
    return formatEvent(event) or ""


_MILLIS = [f".{n:03d}Z" for n in range(1000)]


class _Stamps:
    """``<UTC time>`` of a log line (millisecond precision), its date and time of day made
    once per second."""

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""

    def __call__(self, when: float) -> str:
        second = int(when)
        micros = round((when - second) * 1e6)  # as datetime.fromtimestamp rounds
        if micros >= 1_000_000:
            second, micros = second + 1, micros - 1_000_000
        if second != self._second:
            stamp = datetime.fromtimestamp(second, UTC)
            self._second, self._prefix = second, f"{stamp:%Y-%m-%dT%H:%M:%S}"
        return self._prefix + _MILLIS[micros // 1000]


def format_line(event: dict[str, Any], stamp: Any = None) -> str:
    """``<UTC time> <level> <namespace>: <message>`` plus a traceback for failures."""
    when = (stamp or _Stamps())(event.get("log_time", 0))
    level = event.get("log_level", LogLevel.info).name
    namespace = event.get("log_namespace", "-")
    text = _message(event).replace("\n", " | ")
    line = f"{when} {level} {namespace}: {text}\n"
    failure = event.get("log_failure")
    if failure is not None:
        line += failure.getTraceback()
    return line


@implementer(ILogObserver)
class BatchedLineObserver(LineBatch):
    """An ``ILogObserver`` writing ``format_line`` lines to ``stream`` in batches (see the
    module docstring)."""

    def __init__(
        self, stream: IO[str], clock: Any, *, level: LogLevel = LogLevel.debug, delay: float = 0.1
    ) -> None:
        super().__init__(stream, clock, delay=delay)
        self._levels = frozenset(each for each in LogLevel.iterconstants() if each >= level)
        """The levels written (as ``LogLevelFilterPredicate(level)`` lets them through)."""
        self._stamp = _Stamps()

    def __call__(self, event: dict[str, Any]) -> None:
        if event.get("log_level") not in self._levels or not event.get("log_namespace"):
            return
        in_reactor = self.in_reactor()  # the time prefix cache serves its thread alone
        line = format_line(event, self._stamp if in_reactor else None)
        self.add(line, at_once=not in_reactor or urgent(event))


def start_logging(
    level: str = "info", stream: IO[str] | None = None, clock: Any = None
) -> BatchedLineObserver:
    """Send every twisted.logger event at ``level`` or above (with a namespace, as
    ``LogLevelFilterPredicate`` lets through) to ``stream`` (stdout), in
    batches timed by ``clock`` (the reactor); the caller ``stop()``s the observer returned
    when the process ends."""
    if clock is None:
        from twisted.internet import reactor as clock
    output = BatchedLineObserver(stream or sys.stdout, clock, level=LogLevel.levelWithName(level))
    globalLogBeginner.beginLoggingTo([output], redirectStandardIO=False)
    return output
