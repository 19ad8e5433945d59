"""A delivery worker started before the app server has migrated (a fresh stack starts both
at once) waits for the schema quietly, then delivers."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from shillings_app.migrations import available
from tests.app.helpers import sql
from tests.schema import Schema


def _wait_for(worker: Any, predicate: Callable[[str], bool], within: float = 30.0) -> str:
    deadline = time.monotonic() + within
    while not predicate(text := worker.log_text()):
        assert worker.proc.poll() is None, f"worker exited:\n{text}"
        assert time.monotonic() < deadline, f"not seen in the worker's log:\n{text}"
        time.sleep(0.05)
    return text


def test_worker_waits_quietly_for_the_schema_then_runs(
    database: str, schema: Schema, workers: Any
) -> None:
    latest = available()[-1].version
    worker = workers()  # an empty database: no tables at all
    _wait_for(worker, lambda log: "waiting for the schema: no schema yet" in log)

    schema.copy_to(database)  # migrated, but for the latest version
    sql(database, "DELETE FROM schema_migrations WHERE version = %s", (latest,))
    _wait_for(worker, lambda log: f"migrations not applied yet: {latest}" in log)
    assert "schema ready" not in worker.log_text()

    sql(
        database,
        "INSERT INTO schema_migrations (version, applied_at) VALUES (%s, UTC_TIMESTAMP(6))",
        (latest,),
    )
    log = _wait_for(worker, lambda log: "schema ready: delivering" in log)
    assert "error" not in log.lower(), log
    assert "shillings_hooks_errors_total 0.0" in worker.metrics()
