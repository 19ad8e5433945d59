"""The web process's log output: one classic text line per event, written in batches.

Twisted's ``textFileLogObserver`` formats the time of every event from scratch and writes
and flushes each line by itself: with a log line per request that is a ``strftime`` and a
``write`` system call per request. This observer formats the same lines (same format, so
nothing downstream changes), reuses the time prefix within a second, skips the format
string pass for a line whose format is one field (each request's: ``classic_text``), and
writes what accumulated at most ``delay`` seconds later in one call
(``shillings_proto.batchlog``, as the app server does). Warnings and errors, and any event
logged outside the reactor thread, are written at once; ``stop()`` writes what is left
(called when the process stops).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import IO, Any

from twisted.logger import ILogObserver, LogLevel, formatEventAsClassicLogText, formatTime
from zope.interface import implementer

from shillings_proto.batchlog import LineBatch, urgent

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
class BatchedTextObserver(LineBatch):
    """An ``ILogObserver`` writing classic log text lines to ``stream`` in batches."""

    def __init__(
        self,
        stream: IO[str],
        clock: Any,
        *,
        delay: float = 0.1,
        max_buffered: int = 64 * 1024,
    ) -> None:
        super().__init__(stream, clock, delay=delay, max_buffered=max_buffered)
        self._second = -1
        self._stamp = "-"

    def _time(self, when: float | None) -> str:
        if when is None:
            return "-"
        second = int(when)
        if second != self._second:
            self._stamp = formatTime(second)
            self._second = second
        return self._stamp

    def __call__(self, event: dict[str, Any]) -> None:
        in_reactor = self.in_reactor()  # the time prefix cache serves its thread alone
        text = classic_text(event, self._time if in_reactor else formatTime)
        if text:
            self.add(text, at_once=not in_reactor or urgent(event))

    def request_line(self, text: str, when: float) -> None:
        """Buffer one request's line (reactor thread), as ``__call__`` writes the event the
        site would otherwise publish (namespace ``shillings_web.request``, level info),
        without the publisher, the level filter and the event: a line per request."""
        text = text.replace("\n", "\n\t")
        line = f"{self._time(when)} [{REQUEST_SYSTEM}] {text}\n"
        self.add(line)
