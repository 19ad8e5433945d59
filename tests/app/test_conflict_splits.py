"""A group-commit batch whose every attempt hits a lock conflict (on Galera: another node's
write sets touching its rows) runs again as two halves (``Batcher._split``), down to the
request whose rows stay contended: its batch-mates commit, it alone is refused (503)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pymysql
import pytest
import pytest_twisted
from twisted.internet import defer

from shillings_app.batching import Batcher
from shillings_app.storage import KeptConflicting, RequestScope
from shillings_app.storage.database import ER_LOCK_DEADLOCK, MAX_CONFLICT_RETRIES
from shillings_app.storage.records import MoneyResult

CONTENDED = "c"


def _txn(attempts: list[tuple[str, ...]]) -> Any:
    """A batch function that reads from the database and conflicts (deadlock, 1213) on
    every attempt whose batch holds ``CONTENDED``; records each attempt's requests."""

    def txn(txn: Any, requests: Sequence[str]) -> list[MoneyResult]:
        attempts.append(tuple(requests))
        txn.execute("SELECT COUNT(*) FROM users")
        if CONTENDED in requests:
            raise pymysql.err.OperationalError(ER_LOCK_DEADLOCK, "Deadlock found (test)")
        return [MoneyResult(transaction_id=f"t-{r}", balance=0) for r in requests]

    return txn


@pytest_twisted.ensureDeferred
async def test_a_batch_that_keeps_conflicting_is_split_until_the_conflict_is_alone(app_server):
    attempts: list[tuple[str, ...]] = []
    batcher = Batcher(app_server.db, "conflicts", _txn(attempts), in_flight=1, max_size=64)
    names = ["a", "b", CONTENDED, "d", "e", "f", "g", "h"]
    answers = [
        defer.ensureDeferred(batcher.submit(name, RequestScope(None)))  # type: ignore[arg-type]
        for name in names
    ]
    outcomes = await defer.DeferredList(answers, consumeErrors=True)
    results = dict(zip(names, outcomes, strict=True))
    ok, refused = results.pop(CONTENDED)
    assert not ok and refused.check(KeptConflicting)
    assert {name: r.transaction_id for name, (_, r) in results.items()} == {
        name: f"t-{name}" for name in results
    }
    # "a" found the slot free and ran alone; the seven behind it ran as one batch, which
    # conflicted on every attempt, then as halves (run at once, so their attempts
    # interleave): 7 -> (b c d) + (e f g h), (b c d) -> (b) + (c d), (c d) -> (c) + (d).
    assert attempts[0] == ("a",)
    seven = ("b", CONTENDED, "d", "e", "f", "g", "h")
    assert attempts[1 : 2 + MAX_CONFLICT_RETRIES] == [seven] * (1 + MAX_CONFLICT_RETRIES)
    committed = {a for a in attempts if CONTENDED not in a}
    assert committed == {("a",), ("b",), ("d",), ("e", "f", "g", "h")}
    assert attempts.count((CONTENDED,)) == 1 + MAX_CONFLICT_RETRIES
    assert sum(CONTENDED in a for a in attempts) == 4 * (1 + MAX_CONFLICT_RETRIES)
    assert batcher.conflict_splits == 3  # 7 -> 3 + 4, 3 -> 1 + 2, 2 -> 1 + 1
    assert app_server.db.retries["lock_conflict"] >= 4 * MAX_CONFLICT_RETRIES


@pytest_twisted.ensureDeferred
async def test_a_lone_request_that_keeps_conflicting_is_refused(app_server):
    attempts: list[tuple[str, ...]] = []
    batcher = Batcher(app_server.db, "conflicts", _txn(attempts), in_flight=1, max_size=64)
    with pytest.raises(KeptConflicting):
        await batcher.submit(CONTENDED, RequestScope(None))  # type: ignore[arg-type]
    assert attempts == [(CONTENDED,)] * (1 + MAX_CONFLICT_RETRIES)
    assert batcher.conflict_splits == 0
