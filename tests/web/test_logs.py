"""The web process's batched log output: same lines as Twisted's classic text observer,
written together within ``delay``, urgent ones at once."""

from __future__ import annotations

import io
import threading

from twisted.internet.task import Clock
from twisted.logger import LogLevel, formatEventAsClassicLogText, formatTime

from shillings_web.logs import BatchedTextObserver, classic_text


class Counting(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


def event(n: int, level: LogLevel = LogLevel.info, when: float = 1_700_000_000.25) -> dict:
    return {
        "log_format": "GET /v1/account 200 rid={n}",
        "n": n,
        "log_time": when,
        "log_level": level,
        "log_namespace": "shillings_web.request",
    }


def test_lines_are_the_classic_format_and_written_together_after_the_delay():
    stream, clock = Counting(), Clock()
    observer = BatchedTextObserver(stream, clock, delay=0.1)
    for n in range(3):
        observer(event(n))
    assert stream.getvalue() == ""
    clock.advance(0.1)
    expected = "".join(
        formatEventAsClassicLogText(event(n), formatTime=formatTime) for n in range(3)
    )
    assert stream.getvalue() == expected
    assert stream.writes == 1
    assert "[shillings_web.request#info] GET /v1/account 200 rid=2\n" in expected


def test_time_prefix_follows_each_event_second():
    stream, clock = Counting(), Clock()
    observer = BatchedTextObserver(stream, clock)
    observer(event(1, when=1_700_000_000.9))
    observer(event(2, when=1_700_000_001.1))
    observer.stop()
    first, second = stream.getvalue().splitlines()
    assert first.startswith(formatTime(1_700_000_000))
    assert second.startswith(formatTime(1_700_000_001))
    assert first.split(" ")[0] != second.split(" ")[0]


def test_warnings_and_failures_are_written_at_once_with_what_was_buffered():
    stream, clock = Counting(), Clock()
    observer = BatchedTextObserver(stream, clock)
    observer(event(1))
    observer(event(2, LogLevel.warn))
    assert stream.getvalue().count("\n") == 2
    assert stream.writes == 1
    clock.advance(1)  # the timer of the first line finds nothing left to write
    assert stream.writes == 1


def test_a_full_buffer_is_written_without_waiting():
    stream, clock = Counting(), Clock()
    observer = BatchedTextObserver(stream, clock, max_buffered=200)
    for n in range(10):
        observer(event(n))
    assert stream.writes >= 1
    assert stream.getvalue().count("\n") >= 3


def test_events_from_other_threads_are_written_at_once():
    stream, clock = Counting(), Clock()
    observer = BatchedTextObserver(stream, clock)
    worker = threading.Thread(target=observer, args=(event(7),))
    worker.start()
    worker.join()
    assert "rid=7" in stream.getvalue()
    assert clock.getDelayedCalls() == []


def test_stop_writes_the_rest_and_cancels_the_timer():
    stream, clock = Counting(), Clock()
    observer = BatchedTextObserver(stream, clock)
    observer(event(1))
    observer.stop()
    assert "rid=1" in stream.getvalue()
    assert all(not call.active() for call in clock.getDelayedCalls())
    observer.stop()
    assert stream.writes == 1


def test_one_field_lines_are_formatted_as_twisted_formats_them():
    base = {"log_time": 1_700_000_000.25, "log_level": LogLevel.info, "log_namespace": "ns"}
    events = [
        {**base, "log_format": "{request_line}", "request_line": "GET /v1/account 200 rid=1"},
        {**base, "log_format": "{request_line}", "request_line": "two\nlines"},
        {**base, "log_format": "{line}", "line": "x", "log_system": "legacy"},
        {**base, "log_format": "{line}", "line": 17},
        {**base, "log_format": "{line}", "line": ""},
        {**base, "log_format": "{missing}"},
        {**base, "log_format": "{a.b}", "a": "x"},
        {"log_format": "{line}", "line": "no time, level or namespace"},
        {**base, "log_format": "plain {n} text", "n": 3},
    ]
    for e in events:
        assert classic_text(e, formatTime) == formatEventAsClassicLogText(e, formatTime), e


def test_a_request_line_is_the_line_of_its_event_in_order_with_the_others():
    stream, clock = Counting(), Clock()
    observer = BatchedTextObserver(stream, clock, delay=0.1)
    when = 1_700_000_000.25
    observer(event(1))
    observer.request_line("GET /v1/account 200 0.4ms rid=r2 user=7", when)
    observer.request_line("two\nlines", when)
    assert stream.getvalue() == ""
    clock.advance(0.1)
    published = [
        {
            "log_format": "{request_line}",
            "request_line": line,
            "log_time": when,
            "log_level": LogLevel.info,
            "log_namespace": "shillings_web.request",
        }
        for line in ("GET /v1/account 200 0.4ms rid=r2 user=7", "two\nlines")
    ]
    twisted_lines = [formatEventAsClassicLogText(e, formatTime=formatTime) for e in published]
    first = formatEventAsClassicLogText(event(1), formatTime=formatTime)
    assert stream.getvalue() == first + "".join(twisted_lines)
    assert stream.writes == 1
