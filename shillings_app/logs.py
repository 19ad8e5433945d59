"""Concise one-line log output for twisted.logger (stdout under supervisord, or a file).

Lines are written in batches: with a request log line per request, a ``write`` and a
``flush`` (a system call) per line cost the app server more than parsing the request.
Lines logged in the reactor thread wait at most ``delay`` seconds; warnings, errors,
failures and lines logged from other threads are written at once, with what is waiting;
``stop()`` writes what is left (when the process stops).
"""

from __future__ import annotations

import sys
import threading
from datetime import UTC, datetime
from typing import IO, Any

from twisted.logger import ILogObserver, LogLevel, formatEvent, globalLogBeginner
from twisted.python.util import untilConcludes
from zope.interface import implementer

_URGENT = frozenset({LogLevel.warn, LogLevel.error, LogLevel.critical})


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
class BatchedLineObserver:
    """An ``ILogObserver`` writing ``format_line`` lines to ``stream`` in batches (see the
    module docstring)."""

    def __init__(
        self, stream: IO[str], clock: Any, *, level: LogLevel = LogLevel.debug, delay: float = 0.1
    ) -> None:
        self._levels = frozenset(each for each in LogLevel.iterconstants() if each >= level)
        """The levels written (as ``LogLevelFilterPredicate(level)`` lets them through)."""
        self._stream = stream
        self._clock = clock
        self._delay = delay
        self._lines: list[str] = []
        self._size = 0
        self._timer: Any = None
        self._stamp = _Stamps()
        self._thread = threading.get_ident()
        self._lock = threading.RLock()

    MAX_BUFFERED = 64 * 1024
    """Characters waiting that are written at once."""

    def __call__(self, event: dict[str, Any]) -> None:
        if event.get("log_level") not in self._levels or not event.get("log_namespace"):
            return
        in_reactor = threading.get_ident() == self._thread
        with self._lock:
            line = format_line(event, self._stamp if in_reactor else None)
            self._lines.append(line)
            self._size += len(line)
            urgent = event.get("log_level") in _URGENT or "log_failure" in event
            if in_reactor and not urgent and self._size < self.MAX_BUFFERED:
                if self._timer is None:
                    self._timer = self._clock.callLater(self._delay, self._timed_flush)
                return
        self.flush()

    def _timed_flush(self) -> None:
        self._timer = None
        self.flush()

    def flush(self) -> None:
        """Write every waiting line now."""
        with self._lock:
            if not self._lines:
                return
            text, self._lines, self._size = "".join(self._lines), [], 0
            untilConcludes(self._stream.write, text)
            untilConcludes(self._stream.flush)

    def stop(self) -> None:
        """Cancel the pending timed write and write what is waiting."""
        timer, self._timer = self._timer, None
        if timer is not None and timer.active():
            timer.cancel()
        self.flush()


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
