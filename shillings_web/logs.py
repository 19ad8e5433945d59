"""The web process's log output: one classic text line per event, written in batches.

Twisted's ``textFileLogObserver`` formats the time of every event from scratch and writes
and flushes each line by itself: with a log line per request that is a ``strftime`` and a
``write`` system call per request. This observer formats the same lines (same format, so
nothing downstream changes), reuses the time prefix within a second, skips the format
string pass for a line whose format is one field (each request's: ``classic_text``), and
writes what accumulated at most ``delay`` seconds later in one call. Warnings and errors,
and any event logged outside the reactor thread, are written at once; ``flush()`` writes
what is left (called when the process stops).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import IO, Any

from twisted.logger import ILogObserver, LogLevel, formatEventAsClassicLogText, formatTime
from twisted.python.util import untilConcludes
from zope.interface import implementer

_URGENT = frozenset({LogLevel.warn, LogLevel.error, LogLevel.critical})
REQUEST_NAMESPACE = "shillings_web.request"
REQUEST_SYSTEM = f"{REQUEST_NAMESPACE}#{LogLevel.info.name}"


def classic_text(event: dict[str, Any], format_time: Callable[[float | None], str]) -> str | None:
    """``formatEventAsClassicLogText(event, format_time)``, without its pass through
    ``string.Formatter`` when the format is one plain field holding text and the event has
    no failure and no ``log_system`` (each request's line: ``"{request_line}"``)."""
    fmt = event.get("log_format")
    if (
        isinstance(fmt, str)
        and fmt[:1] == "{"
        and fmt[-1:] == "}"
        and fmt[1:-1].isidentifier()
        and "log_failure" not in event
        and "log_system" not in event
    ):
        value = event.get(fmt[1:-1])
        if isinstance(value, str) and value:
            level = event.get("log_level")
            system = f"{event.get('log_namespace', '-')}#{level.name if level else '-'}"
            text = value.replace("\n", "\n\t")
            return f"{format_time(event.get('log_time'))} [{system}] {text}\n"
    return formatEventAsClassicLogText(event, formatTime=format_time)


@implementer(ILogObserver)
class BatchedTextObserver:
    """An ``ILogObserver`` writing classic log text lines to ``stream`` in batches."""

    def __init__(
        self,
        stream: IO[str],
        clock: Any,
        *,
        delay: float = 0.1,
        max_buffered: int = 64 * 1024,
    ) -> None:
        self._stream = stream
        self._clock = clock
        self._delay = delay
        self._max_buffered = max_buffered
        self._lines: list[str] = []
        self._size = 0
        self._timer: Any = None
        self._second = -1
        self._stamp = "-"
        self._thread = threading.current_thread()
        self._lock = threading.RLock()

    def _time(self, when: float | None) -> str:
        if when is None:
            return "-"
        second = int(when)
        if second != self._second:
            self._stamp = formatTime(second)
            self._second = second
        return self._stamp

    def __call__(self, event: dict[str, Any]) -> None:
        in_reactor = threading.current_thread() is self._thread
        with self._lock:
            text = classic_text(event, self._time if in_reactor else formatTime)
            if not text:
                return
            self._lines.append(text)
            self._size += len(text)
            urgent = event.get("log_level") in _URGENT or "log_failure" in event
            if not (urgent or not in_reactor or self._size >= self._max_buffered):
                if self._timer is None:
                    self._timer = self._clock.callLater(self._delay, self._timed_flush)
                return
        self.flush()

    def request_line(self, text: str, when: float) -> None:
        """Buffer one request's line (reactor thread), as ``__call__`` writes the event the
        site would otherwise publish (namespace ``shillings_web.request``, level info),
        without the publisher, the level filter and the event: a line per request."""
        text = text.replace("\n", "\n\t")
        line = f"{self._time(when)} [{REQUEST_SYSTEM}] {text}\n"
        with self._lock:
            self._lines.append(line)
            self._size += len(line)
            if self._size < self._max_buffered:
                if self._timer is None:
                    self._timer = self._clock.callLater(self._delay, self._timed_flush)
                return
        self.flush()

    def _timed_flush(self) -> None:
        self._timer = None
        self.flush()

    def flush(self) -> None:
        """Write every buffered line now."""
        with self._lock:
            if not self._lines:
                return
            text, self._lines, self._size = "".join(self._lines), [], 0
            untilConcludes(self._stream.write, text)
            untilConcludes(self._stream.flush)

    def stop(self) -> None:
        """Cancel the pending timed write and write what is buffered."""
        timer, self._timer = self._timer, None
        if timer is not None and timer.active():
            timer.cancel()
        self.flush()
