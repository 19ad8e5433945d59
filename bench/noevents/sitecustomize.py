"""Loaded at start-up by every Python process of the what-if stack of bench/hooks_http.py
(through ``PYTHONPATH``), never by a real one: the app server's payments and top-ups then
write no events, so the two stacks differ in the outbox only."""

from shillings_app.storage import events

events.emit = lambda *_args, **_kwargs: None  # type: ignore[assignment]
events.emit_statement = lambda *_args, **_kwargs: None  # type: ignore[assignment]
