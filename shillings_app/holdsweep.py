"""The sweep of expired holds: a timer in each app server marking holds past their expiry
``expired`` in batches, each batch one transaction with its ``hold.expired`` events.

Expiry itself does not wait for the sweep (``money.ACTIVE_HOLDS`` compares ``expires_at``
with the database's clock): the sweep only records the state and tells the users. Several
app servers may sweep at once; the locks and the re-read of each batch make every hold
expire once.
"""

from __future__ import annotations

from typing import Any

from twisted.application.internet import TimerService
from twisted.internet import defer
from twisted.logger import Logger

from shillings_app.handlers.convert import hold_events
from shillings_app.storage import Database, events, holds, money

SWEEP_BATCH = 200
"""Holds marked per transaction."""


def expire_holds_txn(txn: Any, batch: int) -> tuple[int, int]:
    """Mark up to ``batch`` expired holds and emit their events; return (candidates seen,
    holds marked). Lock order as everywhere: the users' rows, then the holds' rows."""
    candidates = holds.expired_candidates(txn, batch)
    if not candidates:
        return 0, 0
    users = sorted({u for _, payer, receiver in candidates for u in (payer, receiver)})
    money.lock_users(txn, *users)
    expired = holds.lock_expired(txn, [hold_id for hold_id, _, _ in candidates])
    if not expired:
        return len(candidates), 0
    at = money.now()
    holds.mark_expired(txn, [hold.id for hold in expired], at)
    marked = [holds.mark(hold, "expired", at) for hold in expired]
    events.emit(txn, [e for hold in marked for e in hold_events(hold, "hold.expired")], at)
    return len(candidates), len(marked)


class HoldSweep(TimerService):
    """Sweeps every ``interval`` seconds (and at start) while its server's database is
    open; stopping waits for a sweep in progress."""

    log = Logger()

    def __init__(self, server: Any, interval: float, clock: Any, batch: int = SWEEP_BATCH) -> None:
        """``server``: an ``AppServer`` (its ``db`` while started, and ``metrics``)."""
        super().__init__(interval, self._tick)
        self.server = server
        self.batch = batch
        self.clock = clock
        self.last: defer.Deferred[Any] = defer.succeed(None)
        """The sweep the timer started last (fires when it is done)."""
        self.marked = 0
        """How many holds the last sweep marked."""

    def _tick(self) -> defer.Deferred[Any]:
        self.last = defer.ensureDeferred(self.sweep())
        return self.last

    async def sweep(self) -> int:
        """Mark every hold expired by now, batch after batch; the number marked."""
        db: Database | None = self.server.db
        total = 0
        try:
            while db is not None:
                seen, marked = await db.run("expire_holds", expire_holds_txn, self.batch)
                total += marked
                if seen < self.batch:
                    break
        except Exception:
            self.server.metrics.hold_sweep_failed()
            self.log.failure("hold sweep failed (holds expire anyway; events wait)")
        self.marked = total
        if total:
            self.server.metrics.holds_expired(total)
            self.log.info("marked {count} holds expired", count=total)
        return total
