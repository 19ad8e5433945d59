"""Concise one-line log output for twisted.logger (stdout under supervisord)."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import IO, Any

from twisted.logger import (
    FilteringLogObserver,
    ILogObserver,
    LogLevel,
    LogLevelFilterPredicate,
    formatEvent,
    globalLogBeginner,
)
from zope.interface import provider


def format_line(event: dict[str, Any]) -> str:
    """``<UTC time> <level> <namespace>: <message>`` plus a traceback for failures."""
    when = datetime.fromtimestamp(event.get("log_time", 0), UTC)
    level = event.get("log_level", LogLevel.info).name
    namespace = event.get("log_namespace", "-")
    text = (formatEvent(event) or "").replace("\n", " | ")
    line = f"{when:%Y-%m-%dT%H:%M:%S.%f}"[:-3] + f"Z {level} {namespace}: {text}\n"
    failure = event.get("log_failure")
    if failure is not None:
        line += failure.getTraceback()
    return line


def line_observer(stream: IO[str]) -> ILogObserver:
    @provider(ILogObserver)
    def observe(event: dict[str, Any]) -> None:
        stream.write(format_line(event))
        stream.flush()

    return observe


def start_logging(level: str = "info", stream: IO[str] | None = None) -> None:
    """Send every twisted.logger event at ``level`` or above to ``stream`` (stdout)."""
    predicate = LogLevelFilterPredicate(defaultLogLevel=LogLevel.levelWithName(level))
    observer = FilteringLogObserver(line_observer(stream or sys.stdout), [predicate])
    globalLogBeginner.beginLoggingTo([observer], redirectStandardIO=False)
