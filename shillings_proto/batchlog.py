"""Log lines written in batches, for the app server's and the web process's log observers.

With a log line per request, a ``write`` and a ``flush`` (a system call) per line cost a
process more than much of the request's own work. Lines added by the reactor's thread wait
at most ``delay`` seconds (or until ``max_buffered`` characters wait); a line added
``at_once`` (warnings, failures, another thread's) is written at once with what is
waiting; ``stop()`` writes what is left when the process stops.
"""

from __future__ import annotations

import threading
import time
from typing import IO, Any

from twisted.logger import Logger, LogLevel
from twisted.python.util import untilConcludes

URGENT = frozenset({LogLevel.warn, LogLevel.error, LogLevel.critical})
"""Levels written at once."""


def urgent(event: dict[str, Any]) -> bool:
    """Whether ``event``'s line must not wait: a warning or worse, or a failure."""
    return event.get("log_level") in URGENT or "log_failure" in event


def emit_info(logger: Logger, log_format: str, **fields: Any) -> None:
    """``logger.info(log_format, **fields)``: the same event, handed to the logger's
    observer, without ``Logger.emit``'s validation of its (constant) level, which sorts
    every log level anew on each call (a request log line per request)."""
    fields.update(
        log_logger=logger,
        log_level=LogLevel.info,
        log_namespace=logger.namespace,
        log_source=None,
        log_format=log_format,
        log_time=time.time(),
    )
    logger.observer(fields)


class LineBatch:
    """Lines waiting to be written to ``stream``, in one call at most ``delay`` seconds
    after the first of them (timed by ``clock``, the reactor)."""

    def __init__(
        self, stream: IO[str], clock: Any, *, delay: float = 0.1, max_buffered: int = 64 * 1024
    ) -> None:
        self._stream = stream
        self._clock = clock
        self._delay = delay
        self._max_buffered = max_buffered
        self._lines: list[str] = []
        self._size = 0
        self._timer: Any = None
        self._reactor_thread = threading.get_ident()
        self._lock = threading.RLock()

    def in_reactor(self) -> bool:
        """Whether the caller runs in the thread that made this batch (the reactor's)."""
        return threading.get_ident() == self._reactor_thread

    def add(self, line: str, *, at_once: bool = False) -> None:
        """Queue ``line``; write everything now when ``at_once`` or too much waits."""
        with self._lock:
            self._lines.append(line)
            self._size += len(line)
            if not at_once and self._size < self._max_buffered:
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
