"""The app's log output: the line format, and lines written in batches."""

from __future__ import annotations

import io
import threading
from datetime import UTC, datetime

from twisted.internet.task import Clock
from twisted.logger import LogLevel, formatEvent

from shillings_app.logs import BatchedLineObserver, format_line


def _event(text: str, level: LogLevel = LogLevel.info, when: float = 1.7e9) -> dict:
    return {
        "log_format": "{what} n={n}",
        "what": text,
        "n": 1,
        "log_level": level,
        "log_namespace": "shillings.test",
        "log_time": when,
    }


def test_line_format() -> None:
    event = _event("a\nb", when=1_700_000_000.1229996)
    assert format_line(event) == "2023-11-14T22:13:20.123Z info shillings.test: a | b n=1\n"
    for when in (1_700_000_000.9999996, 1_700_000_001.0004999, 1_700_000_001.0):
        stamp = f"{datetime.fromtimestamp(when, UTC):%Y-%m-%dT%H:%M:%S.%f}"[:-3] + "Z"
        assert format_line(_event("x", when=when)).startswith(stamp + " ")
    calls = {"log_format": "{f()} {missing}", "f": lambda: "called"}
    assert format_line(calls, None).endswith(f": {formatEvent(calls)}\n")


def test_lines_written_in_batches() -> None:
    stream, clock = io.StringIO(), Clock()
    output = BatchedLineObserver(stream, clock, delay=0.1)
    output(_event("first"))
    output(_event("second"))
    assert stream.getvalue() == ""
    clock.advance(0.1)
    assert stream.getvalue().count("\n") == 2 and "second n=1" in stream.getvalue()
    output(_event("third"))
    output(_event("trouble", LogLevel.warn))
    assert "third" in stream.getvalue() and "warn shillings.test: trouble" in stream.getvalue()
    output(_event("last"))
    output.stop()
    assert stream.getvalue().endswith("info shillings.test: last n=1\n")
    assert not clock.getDelayedCalls()


def test_lines_from_other_threads_written_at_once() -> None:
    stream, clock = io.StringIO(), Clock()
    output = BatchedLineObserver(stream, clock)
    output(_event("waiting"))
    thread = threading.Thread(target=output, args=(_event("from a pool thread"),))
    thread.start()
    thread.join()
    assert stream.getvalue().count("\n") == 2 and "from a pool thread" in stream.getvalue()


def test_levels_below_the_threshold_and_events_without_namespace_dropped() -> None:
    stream = io.StringIO()
    output = BatchedLineObserver(stream, Clock(), level=LogLevel.info)
    output(_event("chatter", LogLevel.debug))
    output({**_event("nameless", LogLevel.error), "log_namespace": ""})
    output(_event("kept"))
    output.stop()
    assert stream.getvalue().count("\n") == 1 and "kept n=1" in stream.getvalue()
